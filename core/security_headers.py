"""Security headers on every HTTP response: what a browser may load, and who may frame the app.

``SecurityHeaders`` is ASGI middleware (listed in ``streamlit_app.py``) that sets, on every HTTP
response the server sends (the page shell at ``/`` and at page paths, static assets, ``/_stcore/*``,
downloads), these headers, replacing any of the same name a route set:

* ``Content-Security-Policy`` (``content_security_policy``), the second wall behind the safe rendering
  of answers: even if a page showed an ``<img>`` pointing elsewhere, the browser would not fetch it.

  - ``default-src 'self'``: anything not named below loads from the app's own origin only. Workers
    fall back to ``script-src``: from the app's origin, never from ``blob:``. The app's pages start no
    ``blob:`` worker (Streamlit's maps and graphviz charts would; the app shows neither).
  - ``script-src 'self' 'sha256-…' 'wasm-unsafe-eval'``: the app's own bundles, and the one inline
    script of Streamlit's page shell (``index.html``) by the hash of its text, computed at start from
    the installed Streamlit (``streamlit_shell_html``), so it follows a Streamlit upgrade. No
    ``'unsafe-inline'`` and no ``'unsafe-eval'``: the pages (Plotly charts, data frames, code) run
    without ``eval``. ``'wasm-unsafe-eval'`` is needed because the decoder of Streamlit's websocket
    messages (protobuf.js with long.js) compiles a small WebAssembly module on every page; it allows
    compiling WebAssembly only, never JavaScript from strings, and only by scripts already allowed.
  - ``style-src 'self' 'unsafe-inline'``: Streamlit styles its components with CSS-in-JS (Emotion),
    which adds ``<style>`` elements at run time with no nonce or hash a policy could name. A style
    cannot make the browser contact another host here: the fonts and images it refers to are bound
    by ``font-src`` and ``img-src``.
  - ``img-src 'self' data: blob:`` and the hosts of ``ADVISOR_ALLOWED_IMAGE_HOSTS`` (``host`` or
    ``host:port``; a source without a scheme matches the page's own scheme and its upgrade to https).
    The page icon is an emoji, drawn from a ``data:`` URL (a ``:material/…:`` icon would be fetched
    from Google's font servers).
  - ``font-src 'self' data:``: Streamlit's fonts; its stylesheet inlines one as ``data:``.
  - ``connect-src 'self'``: fetches and the websocket go to the app's own origin only. In CSP Level 3
    ``'self'`` also matches ``ws:``/``wss:`` on the page's host and port, so the app's own websocket
    is allowed and no other: every Chromium e2e test runs the app's websocket under this policy.
    Current Firefox and Safari match the same way; a browser that predates that rule (Safari before
    WebKit's 2022 fix) would refuse the websocket.
  - ``frame-ancestors 'none'``: no site can frame the app (a click-jacked delete button), not even
    the app itself; ``object-src 'none'``; ``base-uri 'self'``; ``form-action 'self'``: a form posts
    only to the app, and Chromium also checks each redirect after a form post against it, so a form
    route may redirect only within the app. OIDC sign-in (``st.login``) is a top-level navigation,
    not a form post, so its redirect to the identity provider is not restricted by this policy.

* ``X-Frame-Options: DENY`` (``frame-ancestors`` for browsers that predate CSP Level 2),
  ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` (a link followed from an
  answer tells the other site nothing about the page it came from).

The headers are computed once, when the server builds its middleware stack at start.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.settings import get_settings

__all__ = [
    "SecurityHeaders",
    "app_security_headers",
    "content_security_policy",
    "inline_script_hashes",
    "security_headers",
    "streamlit_shell_html",
]

HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
SHELL_IN_PACKAGE: Final = ("static", "index.html")  # Streamlit's page shell, served for every page path


class _InlineScripts(HTMLParser):
    """Collects the text of every ``<script>`` element that has no ``src``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.scripts: list[str] = []
        self._current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self._current = []

    def handle_data(self, data: str) -> None:
        if self._current is not None:
            self._current.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._current is not None:
            self.scripts.append("".join(self._current))
            self._current = None


def inline_script_hashes(html: str) -> tuple[str, ...]:
    """The CSP source (``'sha256-…'``) of each inline script of ``html``, in document order.

    A browser hashes a script's text after normalising line breaks to ``\\n`` (HTML's input stream
    preprocessing), so this does too.
    """
    parser = _InlineScripts()
    parser.feed(html.replace("\r\n", "\n").replace("\r", "\n"))
    parser.close()
    return tuple(
        "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"
        for text in parser.scripts
    )


def _image_host_source(host: str) -> str:
    """``host`` or ``host:port`` as a CSP host source; ValueError for anything else.

    Only lower-case letters, digits, dots and hyphens, and a numeric port: no space, ``;``, ``,``,
    quote, ``*`` or scheme can reach the header, so a setting cannot add or widen a directive.
    """
    name, colon, port = host.partition(":")
    valid_port = not colon or (port.isdigit() and 0 < int(port) < 65536)
    if not name or not set(name) <= HOST_CHARS or name.startswith((".", "-")) or not valid_port:
        raise ValueError(f"{host!r} is not an image host (host or host:port, lower-case, no scheme)")
    return host


def content_security_policy(*, script_hashes: Iterable[str], image_hosts: Iterable[str] = ()) -> str:
    """The app's ``Content-Security-Policy`` value (see the module docstring for each source)."""
    hashes = list(script_hashes)
    for source in hashes:
        if not (source.startswith("'sha256-") and source.endswith("'") and " " not in source):
            raise ValueError(f"{source!r} is not a sha256 script source")
    hosts = sorted({_image_host_source(h) for h in image_hosts})
    directives = [
        ("default-src", ["'self'"]),
        ("script-src", ["'self'", *hashes, "'wasm-unsafe-eval'"]),
        ("style-src", ["'self'", "'unsafe-inline'"]),
        ("img-src", ["'self'", "data:", "blob:", *hosts]),
        ("font-src", ["'self'", "data:"]),
        ("connect-src", ["'self'"]),
        ("frame-ancestors", ["'none'"]),
        ("object-src", ["'none'"]),
        ("base-uri", ["'self'"]),
        ("form-action", ["'self'"]),
    ]
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives)


def security_headers(*, script_hashes: Iterable[str], image_hosts: Iterable[str] = ()) -> dict[str, str]:
    """Every header ``SecurityHeaders`` sets, by name."""
    return {
        "Content-Security-Policy": content_security_policy(script_hashes=script_hashes, image_hosts=image_hosts),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def streamlit_shell_html() -> str:
    """The page shell (``index.html``) of the installed Streamlit, as the server sends it.

    Read as a data file of the ``streamlit`` package, found where the import system finds the package
    (without importing it).
    """
    spec = importlib.util.find_spec("streamlit")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("Streamlit is not installed: no page shell to hash")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*SHELL_IN_PACKAGE)
    return path.read_text(encoding="utf-8")


def app_security_headers() -> dict[str, str]:
    """The headers for this process: the installed Streamlit's shell and the settings' image hosts."""
    return security_headers(
        script_hashes=inline_script_hashes(streamlit_shell_html()),
        image_hosts=get_settings().image_hosts,
    )


class SecurityHeaders:
    """ASGI middleware: sets ``headers`` (by default ``app_security_headers()``) on every HTTP response."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.headers = dict(app_security_headers() if headers is None else headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    response_headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
