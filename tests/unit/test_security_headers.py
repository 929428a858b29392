"""core.security_headers: the CSP's script hash, the image hosts it names, and the middleware."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import pytest
import streamlit
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from core.security_headers import (
    SecurityHeaders,
    app_security_headers,
    content_security_policy,
    inline_script_hashes,
    security_headers,
    streamlit_shell_html,
)
from core.settings import SettingsError, get_settings

SHELL = """<!DOCTYPE html>
<html><head>
<script>
  window.prerenderReady = false
</script>
<script type="module" crossorigin src="./static/js/index.js"></script>
</head><body><div id="root"></div></body></html>
"""


def sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def directive(policy: str, name: str) -> list[str]:
    for part in policy.split(";"):
        words = part.split()
        if words and words[0] == name:
            return words[1:]
    raise AssertionError(f"no {name} in {policy!r}")


# -- the inline script's hash ----------------------------------------------------------------------
def test_the_hash_is_the_sha256_of_the_inline_scripts_text_and_scripts_with_src_are_not_hashed() -> None:
    assert inline_script_hashes(SHELL) == (sha256_source("\n  window.prerenderReady = false\n"),)
    assert inline_script_hashes('<script src="a.js"></script><p>no inline script</p>') == ()
    assert inline_script_hashes("<script>a()</script><script type='module'>b()</script>") == (
        sha256_source("a()"),
        sha256_source("b()"),
    )


def test_the_hash_changes_when_the_shell_file_changes(tmp_path: Path) -> None:
    shell = tmp_path / "index.html"
    shell.write_text(SHELL, encoding="utf-8")
    before = inline_script_hashes(shell.read_text(encoding="utf-8"))
    shell.write_text(SHELL.replace("= false", "= true"), encoding="utf-8")
    after = inline_script_hashes(shell.read_text(encoding="utf-8"))
    assert before != after
    assert after == (sha256_source("\n  window.prerenderReady = true\n"),)
    # the rest of the page does not take part in the hash
    shell.write_text(SHELL.replace('<div id="root">', '<div id="app">'), encoding="utf-8")
    assert inline_script_hashes(shell.read_text(encoding="utf-8")) == before


def test_crlf_line_breaks_are_hashed_as_the_browser_reads_them() -> None:
    """A browser turns CR LF and CR into LF before parsing, so the hash is over LF line breaks."""
    assert inline_script_hashes(SHELL.replace("\n", "\r\n")) == inline_script_hashes(SHELL)
    assert inline_script_hashes("<script>a()\rb()</script>") == (sha256_source("a()\nb()"),)


def test_the_installed_streamlit_shell_is_read_and_its_script_allowed_by_hash() -> None:
    served = (Path(streamlit.__file__).parent / "static" / "index.html").read_text(encoding="utf-8")
    assert streamlit_shell_html() == served
    scripts = re.findall(r"<script>(.*?)</script>", served, re.DOTALL)
    assert scripts, "Streamlit's shell has an inline script"
    script_src = directive(app_security_headers()["Content-Security-Policy"], "script-src")
    assert [sha256_source(text) for text in scripts] == [s for s in script_src if s.startswith("'sha256-")]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src


# -- the policy ------------------------------------------------------------------------------------
def test_the_policy_with_no_image_hosts() -> None:
    policy = content_security_policy(script_hashes=[sha256_source("x")])
    assert policy == (
        "default-src 'self'; "
        f"script-src 'self' {sha256_source('x')} 'wasm-unsafe-eval'; "
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; "
        "font-src 'self' data:; "
        "connect-src 'self'; "
        "frame-ancestors 'none'; "
        "object-src 'none'; "
        "base-uri 'self'; "
        "form-action 'self'"
    )


def test_allowed_image_hosts_are_added_to_img_src_only() -> None:
    policy = content_security_policy(script_hashes=[], image_hosts=["pixel.example:8080", "img.example.com"])
    assert directive(policy, "img-src") == ["'self'", "data:", "blob:", "img.example.com", "pixel.example:8080"]
    for name in ("default-src", "script-src", "connect-src", "font-src"):
        assert "pixel.example:8080" not in directive(policy, name)


@pytest.mark.parametrize(
    "host",
    [
        "a.example; script-src *",  # a second directive
        "a.example;",
        "a.example b.example",  # a second source
        "a.example,b.example",
        "'unsafe-inline'",
        "*",
        "*.example.com",
        "https://a.example",
        "a.example/path",
        "A.EXAMPLE",  # the setting lower-cases; the policy takes nothing else
        "a.example:0",
        "a.example:65536",
        "a.example:80x",
        ":8080",
        "",
        "-a.example",
        "a.example\r\nSet-Cookie: x=1",
    ],
)
def test_a_host_that_is_not_host_or_host_port_is_refused(host: str) -> None:
    with pytest.raises(ValueError, match="is not an image host"):
        content_security_policy(script_hashes=[], image_hosts=[host])


def test_a_script_source_that_is_not_a_sha256_hash_is_refused() -> None:
    for source in ("'unsafe-inline'", "'sha256-abc' 'unsafe-eval'", "sha256-abc"):
        with pytest.raises(ValueError, match="not a sha256 script source"):
            content_security_policy(script_hashes=[source])


@pytest.mark.parametrize(
    "value",
    ["a.example; script-src *", "a.example b.example", "*.example.com", "https://a.example", "a.example:99999"],
)
def test_the_setting_refuses_a_value_that_could_change_the_policy(
    set_env: Callable[..., None], value: str
) -> None:
    set_env(ALLOWED_IMAGE_HOSTS=value)
    with pytest.raises(SettingsError, match="ADVISOR_ALLOWED_IMAGE_HOSTS"):
        get_settings()


def test_the_settings_image_hosts_reach_the_policy(set_env: Callable[..., None]) -> None:
    set_env(ALLOWED_IMAGE_HOSTS=" Pixel.Example:8080 , img.example.com,")
    policy = app_security_headers()["Content-Security-Policy"]
    assert directive(policy, "img-src") == ["'self'", "data:", "blob:", "img.example.com", "pixel.example:8080"]


# -- the middleware --------------------------------------------------------------------------------
def run_asgi(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        if requests:
            return requests.pop()
        await anyio.sleep_forever()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    # in a thread of its own: a test session that also ran the browser tests has an event loop
    # running in this thread (Playwright's sync API)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(anyio.run, app, scope, receive, send).result(timeout=20)
    return sent


def http_scope(path: str = "/") -> Scope:
    return {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}


def response_headers(messages: list[Message]) -> list[tuple[str, str]]:
    start = next(m for m in messages if m["type"] == "http.response.start")
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in start["headers"]]


HEADERS = security_headers(script_hashes=[sha256_source("x")], image_hosts=["pixel.example"])


def test_every_http_response_gets_each_header_once_replacing_the_routes_own() -> None:
    inner = PlainTextResponse("hi", status_code=404, headers={"X-Frame-Options": "SAMEORIGIN"})
    headers = response_headers(run_asgi(SecurityHeaders(inner, HEADERS), http_scope("/missing")))
    for name, value in HEADERS.items():
        assert [v for k, v in headers if k == name.lower()] == [value]
    assert ("content-type", "text/plain; charset=utf-8") in headers  # the route's other headers stay


@pytest.mark.timeout(30)
def test_a_streamed_response_gets_the_headers() -> None:
    async def chunks() -> Any:
        yield b"a"
        yield b"b"

    messages = run_asgi(SecurityHeaders(StreamingResponse(chunks()), HEADERS), http_scope())
    assert dict(response_headers(messages))["content-security-policy"] == HEADERS["Content-Security-Policy"]
    assert b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body") == b"ab"


def test_a_websocket_passes_through_untouched() -> None:
    seen: list[Scope] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)
        await send({"type": "websocket.accept", "headers": []})

    sent = run_asgi(SecurityHeaders(inner, HEADERS), {"type": "websocket", "path": "/_stcore/stream", "headers": []})
    assert sent == [{"type": "websocket.accept", "headers": []}]
    assert len(seen) == 1


def test_by_default_the_middleware_uses_this_processs_headers(set_env: Callable[..., None]) -> None:
    set_env(ALLOWED_IMAGE_HOSTS="pixel.example:8080")
    middleware = SecurityHeaders(PlainTextResponse("hi"))
    assert middleware.headers == app_security_headers()
    assert "pixel.example:8080" in directive(middleware.headers["Content-Security-Policy"], "img-src")
