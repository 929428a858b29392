"""Advisor's entry: ``streamlit run streamlit_app.py``. The HTTP layer around the page router.

``app`` is Streamlit's ASGI entry (``st.App``), which ``streamlit run`` finds and serves. It runs
the page script ``ui/page_router.py`` (settings, sign-in gate, navigation) and adds only HTTP and
process concerns, each delegating to ``core/`` or ``ui/``:

* settings are read when the server imports this module: invalid ones stop the start with one line.
* ``lifespan``: before the server accepts its first connection, ``core.startup.boot`` checks the
  single sign-on configuration (OIDC mode; one clear line when it cannot work), installs the
  read-only guard and boots the process (migrations, recovery sweep, providers, atoms). A boot that
  fails (a database that is down) is logged with a reference and tried again by the page router on
  the next page view, which shows visitors that reference meanwhile. Then, while the server runs,
  ``core.server_tasks`` sweeps runs left pending by a stopped process (any replica's); when it stops
  (SIGTERM), this process's live turns get a grace period and are then closed as interrupted.
* ``RefuseForeignOrigins``: a websocket handshake from another site's page is refused before
  Streamlit sees it (``core.origins``), so Streamlit never looks up the machine's external IP.
* ``SecurityHeaders``: every HTTP response carries a Content-Security-Policy and the other security
  headers (``core.security_headers``).
* Local sign-in (local mode only): the sign-in and create-account routes (``core.auth_routes``), which
  set the HttpOnly session cookie, and ``SessionGate``, which sends a page load without a valid
  session to the sign-in form. OIDC mode signs in through Streamlit's ``st.login`` instead.
* ``on_script_error``: an error outside any page frame shows a reference id, never a trace.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import streamlit as st
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from core.auth_routes import SessionGate, auth_routes
from core.error_reports import log_exception
from core.origins import websocket_origin_allowed
from core.request_context import request_context
from core.security_headers import SecurityHeaders
from core.server_tasks import server_tasks
from core.settings import Settings, SettingsError, get_settings
from core.startup import boot
from ui.auth_view import auth_secrets
from ui.frame import report_uncaught_error

PAGE_ROUTER = Path(__file__).resolve().parent / "ui" / "page_router.py"
POLICY_VIOLATION = 1008  # websocket close code
log = logging.getLogger("advisor.http")


def settings_or_exit() -> Settings:
    """The process's settings; invalid ones end the start with one clear line (exit status 1)."""
    try:
        return get_settings()
    except SettingsError as exc:
        raise SystemExit(f"Advisor cannot start: {exc}") from None


def start_process(settings: Settings) -> None:
    """Boot the process; a failed boot is logged with a reference and left to the page router."""
    with request_context(page="start"):
        try:
            boot(settings, auth_section=auth_secrets())
        except Exception as exc:  # e.g. the database is down: visitors see a reference until it is back
            log_exception(exc, where="start")


@asynccontextmanager
async def lifespan(_app: st.App) -> AsyncIterator[None]:
    await anyio.to_thread.run_sync(start_process, settings)
    async with server_tasks(settings):  # the periodic sweep; live turns closed when the server stops
        yield


class RefuseForeignOrigins:
    """Close a websocket handshake whose ``Origin`` is not the app's own, with one log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if not websocket_origin_allowed(origin, headers.get("host"), st.get_option("browser.serverAddress")):
                log.warning(
                    "refused a websocket from origin %r: not this app's address (a public host name "
                    "is set with STREAMLIT_BROWSER_SERVER_ADDRESS)",
                    (origin or "")[:200],
                )
                await WebSocketClose(code=POLICY_VIOLATION)(scope, receive, send)
                return
        await self.app(scope, receive, send)


settings = settings_or_exit()  # when the server imports this module, before it starts
local_sign_in = settings.auth_mode == "local"
app = st.App(
    PAGE_ROUTER,
    lifespan=lifespan,
    routes=auth_routes() if local_sign_in else [],
    # outermost first: every response, the gate's redirects and the sign-in pages too, carries the
    # security headers
    middleware=[
        Middleware(SecurityHeaders),
        Middleware(RefuseForeignOrigins),
        *([Middleware(SessionGate)] if local_sign_in else []),
    ],
    on_script_error=report_uncaught_error,
)
