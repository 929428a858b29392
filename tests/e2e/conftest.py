"""Real-browser fixtures: Debian's Chromium, the provider stub, and ``streamlit run`` on a fresh database.

Everything listens on and talks to 127.0.0.1 only. The Streamlit server runs as a subprocess with
the read-only guard enforced, PostgreSQL (a copy of the migrated template), both providers pointed
at the stub, and its data directory under a temporary directory; it is shared by the tests of a
module and torn down (database dropped) afterwards.

When Chromium cannot be found the e2e tests FAIL saying so; they are never skipped silently.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _pg_url, create_pg_database, drop_pg_database
from tests.stubs.oidc_provider import OidcProvider

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
START_TIMEOUT_S = 60.0


# ------------------------------------------------------------------------------------------------
# processes
# ------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
        return resp.status, resp.read()


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no output)"


def wait_http_ok(url: str, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Poll ``url`` until it answers 200; fail with the process output if it dies or times out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with status {proc.returncode} before it was ready:\n{_tail(log)}")
        try:
            status, _ = _get(url, timeout=1.0)
            if status == 200:
                return
            last = status
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.1)  # polling interval, not a wait for a result
    pytest.fail(f"{what} did not answer {url} within {START_TIMEOUT_S:.0f} s (last: {last}):\n{_tail(log)}")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class ProviderStub:
    """The standalone stub, controlled over its HTTP control endpoints."""

    url: str
    log: Path

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200, resp.read()

    def fault(self, api: str, fault: dict[str, Any] | str | None, *, queue: bool = False) -> None:
        self._post("/_control/fault", {"api": api, "fault": fault, "queue": queue})

    def reply(self, api: str, reply: dict[str, Any] | None) -> None:
        self._post("/_control/reply", {"api": api, "reply": reply})

    def reset(self) -> None:
        self._post("/_control/reset", {})

    def requests(self) -> list[dict[str, Any]]:
        _, body = _get(f"{self.url}/_control/requests")
        return json.loads(body)  # type: ignore[no-any-return]


@dataclass
class AppServer:
    url: str
    database: str
    data_dir: Path
    log: Path
    proc: subprocess.Popen[bytes]
    screenshots: list[Path] = field(default_factory=list)

    def output(self) -> str:
        return _tail(self.log, 20000)


PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)


@dataclass
class PixelServer:
    """A loopback HTTP server that answers every GET with a 1×1 PNG and records the paths asked for:
    the "other host" a page must not contact."""

    host_port: str
    requests: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host_port}"

    def seen(self) -> list[str]:
        with self.lock:
            return list(self.requests)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium (Playwright cannot download its own here). Missing → the test fails."""
    for candidate in (os.environ.get("ADVISOR_TEST_CHROMIUM", ""), *CHROMIUM_CANDIDATES):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("chromium")
    if found:
        return found
    pytest.fail(
        "Chromium is not installed, so the real-browser e2e tests cannot run. Install Debian's "
        "chromium (`apt-get install -y chromium`, which `make test` tries via scripts/ensure_services.sh) "
        "or point ADVISOR_TEST_CHROMIUM at a Chromium binary."
    )


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - requirements-dev.txt pins it
        pytest.fail(f"playwright is not installed ({exc}); run `make install-dev`.")
    with sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        except Exception as exc:
            pytest.fail(f"Chromium at {chromium_path} could not be started: {exc}")
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def provider_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderStub]:
    """``python -m tests.stubs.provider_server`` on a free loopback port."""
    port = free_port()
    log = tmp_path_factory.mktemp("stub") / "provider_stub.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.stubs.provider_server", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{url}/_control/health", proc, log, "the provider stub")
        yield ProviderStub(url=url, log=log)
    finally:
        stop_process(proc)


@pytest.fixture
def stub(provider_stub: ProviderStub) -> Iterator[ProviderStub]:
    """The module's provider stub with its scripted answers and recorded requests cleared before and
    after the test."""
    provider_stub.reset()
    yield provider_stub
    provider_stub.reset()


@pytest.fixture(scope="module")
def pixel_server() -> Iterator[PixelServer]:
    """A ``PixelServer`` on a free loopback port, for the tests of a module."""
    box: list[PixelServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with box[0].lock:
                box[0].requests.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG_1X1)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(PNG_1X1)

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(PixelServer(host_port=f"127.0.0.1:{httpd.server_address[1]}"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        httpd.shutdown()
        httpd.server_close()


def launch_app(
    env_overrides: dict[str, str], base: Path, *, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start ``streamlit run streamlit_app.py`` (the way ``make run`` starts the app) on loopback.

    The environment is this one without any ``ADVISOR_*`` / ``STREAMLIT_*`` variable, plus
    ``env_overrides``; ``HOME`` is ``base/home``, so no user-level ``~/.streamlit`` config leaks in.
    Returns the process, its URL and the file that receives its output. Nothing waits for it.
    """
    home = base / "home"
    home.mkdir(exist_ok=True)
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADVISOR_", "STREAMLIT_"))}
    # every browser of the tests comes from 127.0.0.1: one address, far more sign-ups than a real one
    env.update({"HOME": str(home), "PYTHONUNBUFFERED": "1", "ADVISOR_SIGNUPS_PER_CLIENT_PER_HOUR": "10000",
                **env_overrides})
    log = base / "streamlit.log"
    streamlit_bin = Path(sys.executable).with_name("streamlit")
    command = [str(streamlit_bin)] if streamlit_bin.exists() else [sys.executable, "-m", "streamlit"]
    command += [
        "run",
        "streamlit_app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}", log


@pytest.fixture(scope="module")
def app_extra_env() -> dict[str, str]:
    """More environment for a module's app server (``ADVISOR_*`` settings); a module overrides it."""
    return {}


@pytest.fixture(scope="module")
def app_server(
    pg_template: str,
    provider_stub: ProviderStub,
    tmp_path_factory: pytest.TempPathFactory,
    app_extra_env: dict[str, str],
) -> Iterator[AppServer]:
    """``streamlit run streamlit_app.py`` on a free port, a fresh PostgreSQL database, guard enforced."""
    base = tmp_path_factory.mktemp("app")
    data_dir = base / "data"
    data_dir.mkdir()
    database = create_pg_database(template=pg_template)
    env = {
        "ADVISOR_DATABASE_URL": _pg_url(database),
        "ADVISOR_PROVIDERS": "openai,anthropic",
        "ADVISOR_OPENAI_BASE_URL": provider_stub.openai_base_url,
        "ADVISOR_OPENAI_API_KEY": "sk-e2e-fake-openai-key",
        "ADVISOR_ANTHROPIC_BASE_URL": provider_stub.anthropic_base_url,
        "ADVISOR_ANTHROPIC_API_KEY": "sk-ant-e2e-fake-anthropic-key",
        "ADVISOR_DATA_DIR": str(data_dir),
        "ADVISOR_GUARD": "enforce",
        "ADVISOR_LOG_LEVEL": "INFO",
        **app_extra_env,
    }
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc, url, log = launch_app(env, base)
        wait_http_ok(f"{url}/_stcore/health", proc, log, "streamlit run streamlit_app.py")
        server = AppServer(url=url, database=database, data_dir=data_dir, log=log, proc=proc)
        yield server
        if proc.poll() is not None:
            pytest.fail(f"the Streamlit server died during the tests:\n{server.output()}")
    finally:
        if proc is not None:
            stop_process(proc)
        drop_pg_database(database)


@pytest.fixture
def session(browser: Any, app_server: AppServer, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no cookies, no session) on the app; screenshots under tmp_path.

    The test fails when any page it opened violated the app's Content-Security-Policy (a test that
    provokes a violation on purpose takes it with ``BrowserSession.take_csp_violations``).
    """
    from tests.e2e.helpers import BrowserSession

    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    try:
        bs = BrowserSession(context.new_page(), app_server.url, tmp_path / "screenshots")
        request.node.e2e_session = bs  # the failure hook below screenshots it
        request.node.e2e_server = app_server
        yield bs
        violations = bs.take_csp_violations()
        if violations:
            pytest.fail("the pages violated the Content-Security-Policy:\n" + "\n".join(violations))
    finally:
        context.close()


# ------------------------------------------------------------------------------------------------
# a screenshot on failure, its path in the report
# ------------------------------------------------------------------------------------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    session = getattr(item, "e2e_session", None)
    if session is None:
        return
    lines = []
    try:
        path = session.shot("FAILED")
        lines.append(f"screenshot at failure: {path}")
        html = path.with_suffix(".html")
        html.write_text(session.page.content())
        lines.append(f"page HTML at failure: {html}")
    except Exception as exc:  # the browser may be gone
        lines.append(f"could not take a screenshot at failure: {exc}")
    if session.shots:
        lines.append("earlier screenshots:\n" + "\n".join(f"  {p}" for p in session.shots))
    if session.log:
        lines.append("steps:\n" + "\n".join(f"  {entry}" for entry in session.log))
    server = getattr(item, "e2e_server", None)
    if server is not None:
        lines.append("streamlit server output (tail):\n" + _tail(server.log, 4000))
    text = "\n".join(lines)
    print(text)  # the paths must be visible in the terminal too
    report.sections.append(("e2e screenshots", text))


# ------------------------------------------------------------------------------------------------
# single sign-on: a real OpenID Connect provider, and the app in OIDC mode
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """``python -m oidc_provider_mock`` (tests/stubs/oidc_provider.py) on a free loopback port, once
    per test session; each test registers its own client and identities."""
    with OidcProvider.start(tmp_path_factory.mktemp("oidc") / "oidc_provider.log") as idp:
        yield idp


def write_auth_secrets(path: Path, auth: dict[str, str] | None) -> Path:
    """A Streamlit secrets file holding ``auth`` as its ``[auth]`` section (no section for None)."""
    lines = ["# written by tests/e2e/conftest.py"]
    if auth is not None:
        lines.append("[auth]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in auth.items())
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@contextmanager
def running_oidc_app(
    pg_template: str, base: Path, auth: Callable[[str], dict[str, str] | None]
) -> Iterator[AppServer]:
    """``streamlit run streamlit_app.py`` in OIDC mode (guard enforced, fresh PostgreSQL database,
    offline demo provider) with ``auth(app_url)`` as its only secrets. The app is reached as
    ``http://localhost:<port>``, the host of its redirect URI, so the identity cookie the callback sets
    is sent on every later request."""
    data_dir = base / "data"
    data_dir.mkdir(parents=True)
    port = free_port()
    url = f"http://localhost:{port}"
    secrets = write_auth_secrets(base / "secrets.toml", auth(url))
    database = create_pg_database(template=pg_template)
    env = {
        "ADVISOR_DATABASE_URL": _pg_url(database),
        "ADVISOR_DATA_DIR": str(data_dir),
        "ADVISOR_GUARD": "enforce",
        "ADVISOR_LOG_LEVEL": "INFO",
        "ADVISOR_AUTH_MODE": "oidc",
        "STREAMLIT_SECRETS_FILES": str(secrets),
    }
    proc: subprocess.Popen[bytes] | None = None
    try:
        proc, loopback_url, log = launch_app(env, base, port=port)
        wait_http_ok(f"{loopback_url}/_stcore/health", proc, log, "streamlit run streamlit_app.py (OIDC mode)")
        server = AppServer(url=url, database=database, data_dir=data_dir, log=log, proc=proc)
        yield server
        if proc.poll() is not None:
            pytest.fail(f"the Streamlit server died during the tests:\n{server.output()}")
    finally:
        if proc is not None:
            stop_process(proc)
        drop_pg_database(database)


@pytest.fixture(scope="module")
def oidc_app_server(
    pg_template: str, oidc_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """The app in OIDC mode, registered at ``oidc_provider`` as a confidential client."""

    def auth(app_url: str) -> dict[str, str]:
        client = oidc_provider.register_client(f"{app_url}/oauth2callback")
        return {
            "redirect_uri": client.redirect_uri,
            "cookie_secret": secrets.token_hex(32),
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "server_metadata_url": oidc_provider.metadata_url,
        }

    with running_oidc_app(pg_template, tmp_path_factory.mktemp("oidc-app"), auth) as server:
        yield server


@pytest.fixture
def oidc_session(
    browser: Any, oidc_app_server: AppServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """A fresh browser context (no cookies) on the OIDC-mode app; screenshots under tmp_path."""
    from tests.e2e.helpers import BrowserSession

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        bs = BrowserSession(context.new_page(), oidc_app_server.url, tmp_path / "screenshots")
        request.node.e2e_session = bs  # the failure hook screenshots it
        request.node.e2e_server = oidc_app_server
        yield bs
    finally:
        context.close()
