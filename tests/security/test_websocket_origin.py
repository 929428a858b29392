"""C11 / C19 from the first request: a websocket from another site's page makes no connection leave
loopback, even before any session has run the page script.

Streamlit, to decide on a websocket whose ``Origin`` is not local, looks up the machine's external
IP (an HTTP request to checkip.amazonaws.com). No Streamlit setting turns that off while keeping
the origin check: ``server.enableCORS = false`` skips it by accepting a websocket from every origin,
and ``browser.serverAddress`` / ``server.corsAllowedOrigins`` are compared only around the lookup.
So ``streamlit_app.py`` refuses such a handshake before Streamlit sees it, and installs the read-only
guard before the server handles its first connection.

* The app process (``streamlit run streamlit_app.py``, guard ``enforce``, log level INFO) gets, as
  its very first connection, a websocket upgrade to ``/_stcore/stream`` with
  ``Origin: http://evil.example``. It answers 403; its log shows the guard installed before that,
  one refusal line, and no egress attempt: the guard logs every connection or name lookup that is
  not on its allow-list ("guard refused ..."), in ``log`` mode and in ``enforce`` mode alike;
  ``enforce`` also keeps anything from leaving should the app regress.
* A control, in a child process with the same guard: Streamlit's own origin check, asked about
  ``http://evil.example``, does try the lookup, and the guard's log shows it. The origins the app
  lets through are ones Streamlit accepts without any lookup. (This probes a Streamlit internal on
  purpose: it fails loudly when a Streamlit release changes how origins are checked.)

Every byte the tests send goes to 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import launch_app, stop_process

ROOT = Path(__file__).resolve().parents[2]
FOREIGN = "http://evil.example"
GUARD_INSTALLED = "guard enforce:"
REFUSED = f"refused a websocket from origin {FOREIGN!r}"
START_TIMEOUT_S = 90.0


def websocket_handshake(port: int, origin: str, *, deadline: float) -> str:
    """Send a websocket upgrade to 127.0.0.1:``port``/_stcore/stream; return the status line.

    Connects as soon as the server's socket listens (retrying until ``deadline``), so the request
    can reach the server before it has finished starting; the answer comes when it handles it.
    """
    while True:
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # polling for the listening socket, not waiting for a result
    with conn:
        conn.settimeout(max(1.0, deadline - time.monotonic()))
        key = base64.b64encode(os.urandom(16)).decode()
        conn.sendall(
            (
                "GET /_stcore/stream HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                f"Origin: {origin}\r\n\r\n"
            ).encode()
        )
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(1024)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode(errors="replace")


@pytest.mark.timeout(180)
def test_foreign_origin_websocket_before_any_session_leaves_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {
        "ADVISOR_DATABASE_URL": f"sqlite:///{data_dir / 'advisor.db'}",
        "ADVISOR_DATA_DIR": str(data_dir),
        "ADVISOR_GUARD": "enforce",
        "ADVISOR_LOG_LEVEL": "INFO",
    }
    proc, url, log = launch_app(env, tmp_path)
    port = int(urlsplit(url).port or 0)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        first = websocket_handshake(port, FOREIGN, deadline=deadline)  # the server's first connection
        own = websocket_handshake(port, f"http://127.0.0.1:{port}", deadline=deadline)
        time.sleep(0.5)  # let the server write its log lines for the two requests
        assert proc.poll() is None, log.read_text(errors="replace")
    finally:
        stop_process(proc)
    text = log.read_text(errors="replace")
    assert first.startswith("HTTP/1.1 403"), (first, text)
    assert own.startswith("HTTP/1.1 101"), (own, text)  # the app's own pages still connect
    assert text.count(REFUSED) == 1, text  # one line for the refused connection
    assert GUARD_INSTALLED in text and text.index(GUARD_INSTALLED) < text.index(REFUSED), text
    # no connection attempt and no name lookup beyond the allow-list, and Streamlit's own check
    # (the one that looks up the external IP) never saw the foreign origin
    assert "guard refused" not in text, text
    assert "checkip" not in text and "Did not auto detect external IP" not in text, text
    assert "Rejecting WebSocket connection" not in text, text


CONTROL = """
import json, logging, sys
from streamlit import config
config.get_config_options(force_reparse=True)  # .streamlit/config.toml of the repository

from core.guard import install_guard
from core.origins import websocket_origin_allowed
from core.settings import get_settings
from streamlit.web.server.server_util import is_url_from_allowed_origins

refusals = []
class Refusals(logging.Handler):
    def emit(self, record):
        refusals.append(record.getMessage())
logging.getLogger("advisor.guard").addHandler(Refusals(logging.WARNING))
install_guard(get_settings())

results = {"server_address": config.get_option("browser.serverAddress"), "app_allows": {}}
for origin in json.loads(sys.argv[1]):
    allowed_here = websocket_origin_allowed(origin, "127.0.0.1:9", config.get_option("browser.serverAddress"))
    before = len(refusals)
    results["app_allows"][origin] = [allowed_here, is_url_from_allowed_origins(origin), refusals[before:]]
before = len(refusals)
results["foreign"] = [is_url_from_allowed_origins(sys.argv[2]), refusals[before:]]
print("RESULTS " + json.dumps(results))
"""

LOCAL_ORIGINS = ["http://localhost:8501", "http://127.0.0.1:1234", "http://0.0.0.0:8501", "https://localhost"]


@pytest.mark.timeout(120)
def test_streamlits_own_origin_check_looks_up_the_external_ip(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADVISOR_", "STREAMLIT_"))}
    env.update(
        {"ADVISOR_GUARD": "enforce", "ADVISOR_DATA_DIR": str(tmp_path), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    )
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CONTROL), json.dumps(LOCAL_ORIGINS), FOREIGN],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    results = json.loads(lines[-1][len("RESULTS ") :])
    # what the app lets through, Streamlit accepts at once, without a lookup
    for origin, (allowed_here, allowed_by_streamlit, refusals) in results["app_allows"].items():
        assert allowed_here and allowed_by_streamlit and refusals == [], (origin, refusals)
    # a foreign origin: Streamlit refuses it, but only after trying to reach checkip.amazonaws.com
    allowed, refusals = results["foreign"]
    assert allowed is False
    assert any("checkip.amazonaws.com" in r for r in refusals), (
        "Streamlit's origin check no longer looks up the external IP; the refusal in "
        f"streamlit_app.py may no longer be needed. Guard log: {refusals}"
    )
