"""The HTTP side of local sign-in: the sign-in and create-account routes, and the gate on page loads.

``streamlit_app.py`` hands ``auth_routes()`` to ``st.App(routes=...)`` and ``SessionGate`` to its
middleware, in local mode only (OIDC mode signs in through Streamlit's ``st.login``).

Routes (plain HTML forms, ``core.auth_pages``)
    ``GET /signin``, ``GET /signup`` show the forms; ``POST /signin`` checks email and password
    (``core.accounts.sign_in``), ``POST /signup`` creates the account (``core.accounts.sign_up``,
    given the client's address). On success the route starts a session (``core.sessions``) and
    answers ``303 See Other`` to the page asked for (``next``, a local path only), setting the
    session cookie: ``HttpOnly`` (no script on the page can read it), ``SameSite=Lax``, ``Path=/``,
    ``Max-Age`` of ``ADVISOR_SESSION_DAYS``, and ``Secure`` when the request came over https (or,
    behind ``ADVISOR_TRUSTED_PROXY_HOPS`` proxies, they say ``X-Forwarded-Proto: https``). On
    failure the form comes back with its message (status 400, or 429 when a limit refused it).

Cross-site request forgery
    A form post must carry a ``csrf`` field equal to the ``advisor_csrf`` cookie (double submit:
    another site can neither read the cookie nor set it), and a browser's ``Sec-Fetch-Site`` must be
    ``same-origin`` (or ``none``: typed by the user). A post that fails either gets the form again with
    a fresh token and "Please try again", status 403. The cookie is set whenever a form is shown.

``SessionGate``
    A browser navigating to any page of the app (a request for a document, outside Streamlit's own
    ``/_stcore/``, ``/static/``, ``/media/`` and ``/component/`` paths and these routes) without a
    valid session is sent to ``/signin?next=<the page>`` before Streamlit serves it, and an invalid
    session cookie is deleted on the way. So a deep link while signed out shows the sign-in form, and
    after signing in the page asked for. A page load with a valid session gets its cookie set again
    with a fresh ``Max-Age``, so the browser keeps it as long as the server does (sliding expiry).
    The Streamlit script checks the session again on every run
    (``ui.auth_view``): a session revoked while its tab is open ends at that tab's next interaction.

Blocking work (password hashing, the database) runs in a worker thread.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Final
from urllib.parse import parse_qs, urlsplit

import anyio
from pydantic import ValidationError
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import accounts, rate_limits, sessions
from core.auth_pages import SIGN_IN_PATH, SIGN_UP_PATH, path_with_next, sign_in_page, sign_up_page
from core.rate_limits import LimitExceeded
from core.settings import get_settings
from models.schemas import SignInIn, SignUpIn, error_lines, field_errors

__all__ = [
    "CSRF_COOKIE",
    "SIGN_IN_PATH",
    "SIGN_UP_PATH",
    "SessionGate",
    "auth_routes",
    "safe_next",
]

log = logging.getLogger("advisor.http.auth")

CSRF_COOKIE: Final = "advisor_csrf"
CSRF_FIELD: Final = "csrf"
MAX_FORM_BYTES: Final = 65_536  # room for a pasted password far past its limit, whose message names it
MAX_NEXT_CHARS: Final = 2_000
STREAMLIT_PATHS: Final = ("/_stcore/", "/static/", "/media/", "/component/")
AUTH_PATHS: Final = frozenset({SIGN_IN_PATH, SIGN_UP_PATH})
FORM_EXPIRED: Final = "Your form had expired. Please try again."
FORM_TOO_LARGE: Final = "What you sent is far too long: use at most 254 characters for an email and 256 for a password."


class _FormTooLarge(Exception):
    """The posted form is larger than ``MAX_FORM_BYTES``."""


# ------------------------------------------------------------------------------------------------
# small pieces
# ------------------------------------------------------------------------------------------------
def safe_next(value: str | None) -> str:
    """``value`` when it is a path of this app (``/analytics?x=1``), else ``/``: never another site
    (``//evil.example``, ``https://…``, ``/\\evil``), never a sign-in route (no loop)."""
    if not value or len(value) > MAX_NEXT_CHARS or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in AUTH_PATHS:
        return "/"
    return value


def _is_https(request: Request) -> bool:
    """Whether the browser reached the app over https: the request's own scheme or, behind
    ``ADVISOR_TRUSTED_PROXY_HOPS`` proxies of ours (which terminate TLS), their ``X-Forwarded-Proto``."""
    if request.url.scheme == "https":
        return True
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return get_settings().trusted_proxy_hops > 0 and forwarded == "https"


def _client(request: Request) -> str | None:
    """The client's address as sign-in and sign-up limits count it: the connection's peer (a
    loopback peer too: one address is one address), or behind ``ADVISOR_TRUSTED_PROXY_HOPS`` proxies
    what the outermost saw. A proxy of ours in front must be declared there, or every user would
    share its address."""
    peer = request.client.host if request.client is not None else None
    forwarded = request.headers.getlist("x-forwarded-for")
    return rate_limits.client_address(peer, forwarded, get_settings().trusted_proxy_hops)


def _csrf_token(request: Request) -> str:
    """The browser's CSRF token (its cookie), or a new one when it has none usable."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if 20 <= len(current) <= 100 and current.isascii() else secrets.token_urlsafe(32)


def _cookie_lifetime_s() -> int:
    return int(sessions.session_lifetime().total_seconds())


def _with_csrf_cookie(response: Response, request: Request, token: str) -> Response:
    response.set_cookie(CSRF_COOKIE, token, max_age=_cookie_lifetime_s(), path="/", httponly=True,
                        samesite="lax", secure=_is_https(request))
    return response


def _cross_site(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    return site is not None and site not in ("same-origin", "none")


async def _form(request: Request) -> dict[str, str] | None:
    """The posted form (``application/x-www-form-urlencoded``), first value of each field; None for
    anything else. Raises ``_FormTooLarge`` past ``MAX_FORM_BYTES``."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _FormTooLarge
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in fields.items()}


def _csrf_ok(request: Request, form: Mapping[str, str]) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode(), sent.encode()) and not _cross_site(request)


def _with_session_cookie(response: Response, request: Request, token: str) -> Response:
    response.set_cookie(sessions.SESSION_COOKIE, token, max_age=_cookie_lifetime_s(), path="/",
                        httponly=True, samesite="lax", secure=_is_https(request))
    return response


def _signed_in_redirect(request: Request, next_path: str, new: sessions.NewSession) -> Response:
    return _with_session_cookie(RedirectResponse(next_path, status_code=303), request, new.token)


async def _valid_session(request: Request) -> sessions.ValidSession | None:
    token = request.cookies.get(sessions.SESSION_COOKIE)
    if not token:
        return None
    return await anyio.to_thread.run_sync(sessions.validate_session, token)


# ------------------------------------------------------------------------------------------------
# routes
# ------------------------------------------------------------------------------------------------
async def sign_in(request: Request) -> Response:
    """``GET``/``POST /signin``."""
    csrf = _csrf_token(request)
    if request.method == "GET":
        next_path = safe_next(request.query_params.get("next"))
        if await _valid_session(request) is not None:
            return RedirectResponse(next_path, status_code=303)
        page = sign_in_page(csrf=csrf, next_path=next_path)
        return _with_csrf_cookie(HTMLResponse(page), request, csrf)
    try:
        form = await _form(request) or {}
    except _FormTooLarge:
        page = sign_in_page(csrf=csrf, next_path="/", errors=[FORM_TOO_LARGE])
        return _with_csrf_cookie(HTMLResponse(page, status_code=413), request, csrf)
    next_path = safe_next(form.get("next"))
    email = form.get("email", "")[:300]

    def again(errors: list[str], status: int) -> Response:
        page = sign_in_page(csrf=csrf, next_path=next_path, email=email, errors=errors)
        return _with_csrf_cookie(HTMLResponse(page, status_code=status), request, csrf)

    if not _csrf_ok(request, form):
        return again([FORM_EXPIRED], 403)
    try:
        data = SignInIn(email=form.get("email", ""), password=form.get("password", ""))
    except ValidationError as exc:  # the form of what was typed (says nothing about any account)
        return again(error_lines(exc), 400)
    client = _client(request)
    key = sessions.token_hash(csrf)
    try:
        user = await anyio.to_thread.run_sync(lambda: accounts.sign_in(data, session_key=key, client=client))
    except LimitExceeded as exc:
        return again([exc.message], 429)
    except accounts.AuthError as exc:
        return again([exc.message], 400)
    agent = request.headers.get("user-agent")
    new = await anyio.to_thread.run_sync(lambda: sessions.create_session(user.id, user_agent=agent))
    return _signed_in_redirect(request, next_path, new)


async def sign_up(request: Request) -> Response:
    """``GET``/``POST /signup``."""
    csrf = _csrf_token(request)
    minimum = get_settings().min_password_length
    if request.method == "GET":
        next_path = safe_next(request.query_params.get("next"))
        if await _valid_session(request) is not None:
            return RedirectResponse(next_path, status_code=303)
        page = sign_up_page(csrf=csrf, next_path=next_path, min_password_length=minimum)
        return _with_csrf_cookie(HTMLResponse(page), request, csrf)
    try:
        form = await _form(request) or {}
    except _FormTooLarge:
        page = sign_up_page(csrf=csrf, next_path="/", min_password_length=minimum, errors={"form": FORM_TOO_LARGE})
        return _with_csrf_cookie(HTMLResponse(page, status_code=413), request, csrf)
    next_path = safe_next(form.get("next"))
    email = form.get("email", "")[:300]

    def again(errors: Mapping[str, str], status: int) -> Response:
        page = sign_up_page(csrf=csrf, next_path=next_path, min_password_length=minimum, email=email,
                            errors=errors)
        return _with_csrf_cookie(HTMLResponse(page, status_code=status), request, csrf)

    if not _csrf_ok(request, form):
        return again({"form": FORM_EXPIRED}, 403)
    try:
        data = SignUpIn(email=form.get("email", ""), password=form.get("password", ""),
                        confirm_password=form.get("confirm", ""))
    except ValidationError as exc:
        fields = {"email": "email", "password": "password", "confirm_password": "confirm"}
        return again({fields.get(f, "form"): m for f, m in field_errors(exc).items()}, 400)
    client = _client(request)
    key = sessions.token_hash(csrf)
    try:
        user = await anyio.to_thread.run_sync(lambda: accounts.sign_up(data, session_key=key, client=client))
    except LimitExceeded as exc:
        return again({"email": exc.message}, 429)
    except accounts.AuthError as exc:
        return again({exc.field or "email": exc.message}, 400)
    agent = request.headers.get("user-agent")
    new = await anyio.to_thread.run_sync(lambda: sessions.create_session(user.id, user_agent=agent))
    return _signed_in_redirect(request, next_path, new)


def auth_routes() -> list[Route]:
    """The routes to hand to ``st.App(routes=...)`` in local mode."""
    return [
        Route(SIGN_IN_PATH, sign_in, methods=["GET", "POST"]),
        Route(SIGN_UP_PATH, sign_up, methods=["GET", "POST"]),
    ]


# ------------------------------------------------------------------------------------------------
# the gate on page loads
# ------------------------------------------------------------------------------------------------
def _is_page_load(scope: Scope) -> bool:
    """A browser asking for a document of the app (not an asset, an API call or a sign-in route)."""
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return False
    path: str = scope["path"]
    if path in AUTH_PATHS or path.startswith(STREAMLIT_PATHS):
        return False
    headers = Headers(scope=scope)
    dest = headers.get("sec-fetch-dest")
    if dest is not None:
        return dest == "document"
    return "text/html" in headers.get("accept", "")


class SessionGate:
    """ASGI middleware: a page load without a valid session goes to the sign-in form (see module)."""

    def __init__(self, app: ASGIApp, validate: Callable[[str | None], object] | None = None) -> None:
        self.app = app
        self.validate = validate or sessions.validate_session

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_page_load(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = request.cookies.get(sessions.SESSION_COOKIE)
        if token and await anyio.to_thread.run_sync(self.validate, token) is not None:
            # the cookie's own expiry slides with the session's: set again on each page load
            refreshed = _with_session_cookie(Response(), request, token).headers["set-cookie"]

            async def send_with_cookie(message: Message) -> None:
                if message["type"] == "http.response.start":
                    MutableHeaders(scope=message).append("set-cookie", refreshed)
                await send(message)

            await self.app(scope, receive, send_with_cookie)
            return
        wanted = scope["path"] + (f"?{request.url.query}" if request.url.query else "")
        response = RedirectResponse(path_with_next(SIGN_IN_PATH, safe_next(wanted)), status_code=303)
        if token is not None:
            response.delete_cookie(sessions.SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                                   secure=_is_https(request))
        await response(scope, receive, send)
