"""The second wall of C22 on a real server and in a real browser: security headers and the CSP.

* ``streamlit run streamlit_app.py`` answers ``/``, a page path, a static asset and the health check
  with the Content-Security-Policy and the other security headers. The expected script hash is
  computed here from the page shell the server sent, not by the code under test.
* An ``<img>`` injected into the page, pointing at a second loopback server (the "pixel" server,
  which records every request), is refused by the browser: the pixel server receives 0 requests and
  the browser reports an ``img-src`` violation.
* The module runs twice: with default settings, then with the pixel server's ``host:port`` in
  ``ADVISOR_ALLOWED_IMAGE_HOSTS``, where the same injected image loads and the pixel server receives
  its request. So the test can tell a policy that blocks from one that does not.
* No other page can frame the app (``frame-ancestors 'none'``).

Every other e2e test runs under the same policy: the shared ``session`` fixture fails a test whose
pages reported any CSP violation.
"""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.request
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import AppServer, PixelServer
from tests.e2e.helpers import BrowserSession

pytestmark = pytest.mark.e2e

INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
MODULE_SCRIPT = re.compile(r'<script type="module" crossorigin src="\./(static/js/[^"]+\.js)"')

LOAD_IMAGE = """(src) => new Promise((resolve) => {
  const img = document.createElement('img');
  img.onload = () => resolve('loaded');
  img.onerror = () => resolve('refused');
  img.src = src;
  document.body.appendChild(img);
})"""


@pytest.fixture(scope="module", params=["default settings", "pixel host allowed"])
def app_extra_env(request: pytest.FixtureRequest, pixel_server: PixelServer) -> dict[str, str]:
    """The app server of this module runs twice: with default settings, then with the pixel
    server's host allowed for images."""
    if request.param == "pixel host allowed":
        return {"ADVISOR_ALLOWED_IMAGE_HOSTS": pixel_server.host_port}
    return {}


def get(url: str) -> tuple[int, dict[str, str], str]:
    """Status, headers (lower-case names; a repeated header would keep only its last value, so
    ``header_counts`` checks for repeats) and body of a GET to the loopback app."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode("utf-8", "replace")


def header_counts(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        names = [k.lower() for k, _ in resp.headers.items()]
    return {name: names.count(name) for name in set(names)}


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        assert name not in parsed, f"{name} twice in {policy!r}"
        parsed[name] = sources
    return parsed


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def test_every_response_carries_the_security_headers(
    app_server: AppServer, app_extra_env: dict[str, str]
) -> None:
    _, _, shell = get(f"{app_server.url}/")
    inline = INLINE_SCRIPT.findall(shell)
    assert len(inline) == 1, inline  # Streamlit's shell has one inline script
    script_hash = sha256_source(inline[0])
    entry = MODULE_SCRIPT.search(shell)
    assert entry is not None, shell[:2000]
    image_hosts = [app_extra_env["ADVISOR_ALLOWED_IMAGE_HOSTS"]] if app_extra_env else []

    for path in ("/", "/analytics", f"/{entry.group(1)}", "/_stcore/health", "/favicon.png", "/signin", "/signup"):
        status, headers, _ = get(f"{app_server.url}{path}")
        assert status == 200, path
        assert headers["x-frame-options"] == "DENY", path
        assert headers["x-content-type-options"] == "nosniff", path
        assert headers["referrer-policy"] == "no-referrer", path
        counts = header_counts(f"{app_server.url}{path}")
        for name in ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy"):
            assert counts.get(name) == 1, (path, name, counts)
        assert directives(headers["content-security-policy"]) == {
            "default-src": ["'self'"],
            "script-src": ["'self'", script_hash, "'wasm-unsafe-eval'"],
            "style-src": ["'self'", "'unsafe-inline'"],
            "img-src": ["'self'", "data:", "blob:", *image_hosts],
            "font-src": ["'self'", "data:"],
            "connect-src": ["'self'"],
            "frame-ancestors": ["'none'"],
            "object-src": ["'none'"],
            "base-uri": ["'self'"],
            "form-action": ["'self'"],
        }, path


def test_an_injected_image_loads_only_from_an_allowed_host(
    session: BrowserSession, app_extra_env: dict[str, str], pixel_server: PixelServer
) -> None:
    s = session
    allowed = "ADVISOR_ALLOWED_IMAGE_HOSTS" in app_extra_env
    s.goto("/")
    s.expect_sign_in_view()
    pixel_server.clear()
    path = f"/pixel.png?d={uuid.uuid4().hex}"

    outcome = s.page.evaluate(LOAD_IMAGE, f"{pixel_server.url}{path}")

    if allowed:
        assert outcome == "loaded"
        assert pixel_server.seen() == [path]
    else:
        # The browser refuses before any request is made; the error event follows the refusal.
        assert outcome == "refused"
        assert pixel_server.seen() == []
        violations = s.take_csp_violations()
        assert any(v.startswith(f"img-src refused {pixel_server.url}{path}") for v in violations), violations
        s.page.reload()
        s.wait_app_if_shown()
        s.expect_sign_in_view()
        assert pixel_server.seen() == []


def test_no_other_page_can_frame_the_app(browser: Any, app_server: AppServer) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        messages: list[str] = []
        page.on("console", lambda m: messages.append(m.text))
        with page.expect_event("framenavigated", predicate=lambda f: f.parent_frame is not None):
            page.set_content(f'<iframe src="{app_server.url}/privacy" width="800" height="600"></iframe>')
        framed = page.frames[1]
        expect(page.locator("iframe")).to_have_count(1)
        framed.wait_for_load_state()
        assert not framed.url.startswith(app_server.url), framed.url  # an error page, not the app
        assert framed.locator("[data-testid=stApp]").count() == 0
        assert any("frame-ancestors 'none'" in m for m in messages), messages
    finally:
        context.close()
