"""The sign-in gate's views: who is signed in, the signed-out view, the account box.

Local mode: the browser holds a session token in an HttpOnly cookie, set by the sign-in and
create-account routes (``core.auth_routes``, plain HTML forms). Every run of the script reads it
(``st.context.cookies``, what the browser sent when the tab connected) and checks it with
``core.sessions.validate_session``: a session revoked anywhere (sign-out in another tab, "sign out
everywhere", a password change, the account deleted) shows the signed-out view at this tab's next
interaction. The user row is re-read on every run too, so a revoked admin takes effect at once.
``AppTest`` has no cookies: tests put a real session's token in the session state
(``SESSION_TOKEN_KEY``), where the cookie's token is kept after the first run.

OIDC mode trusts Streamlit's ``st.user`` (its signed identity cookie) and maps it to a user row
once per session. Signing out clears the whole session state (and, in OIDC mode, the identity
cookie). OIDC mode reads Streamlit's ``[auth]`` secrets section (``auth_secrets``): when it cannot
work (``core.oidc_config``), the sign-in view says what is missing instead of offering a button
that fails.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import streamlit as st

from core import accounts, sessions
from core.auth_pages import SIGN_IN_PATH, SIGN_UP_PATH, path_with_next, sign_in_form
from core.auth_routes import CSRF_COOKIE, safe_next
from core.oidc_config import oidc_config_problem
from core.settings import Settings, get_settings
from ui.frame import SignedInUser, guarded, set_signed_in_user, signed_in_user
from ui.text import literal

SESSION_TOKEN_KEY = "advisor_session_token"  # noqa: S105 - a session-state key, not a secret
OIDC_IDENTITY_KEY = "advisor_oidc_identity"
AUTH_ERROR_KEY = "advisor_auth_error"
SIGNED_OUT_NOTICE_KEY = "advisor_signed_out_notice"

__all__ = [
    "AccountDeletedNotice",
    "auth_secrets",
    "current_session_hash",
    "render_account_box",
    "render_sign_in",
    "resolve_user",
    "sign_out",
]


@dataclass(frozen=True)
class AccountDeletedNotice:
    """Shown once by the sign-in view after an account deletion signed its owner out."""

    total_rows: int
    row_counts: dict[str, int]
    record_id: str

    def show(self) -> None:
        st.success(f"Your account was deleted: {self.total_rows:,} rows removed. You are signed out.",
                   icon=":material/check_circle:")
        st.table({"table": list(self.row_counts), "rows deleted": list(self.row_counts.values())})
        st.caption(f"Deletion record {self.record_id} (holds no personal data).")


def _signed_in(user: accounts.AuthUser) -> SignedInUser:
    return SignedInUser(id=user.id, email=user.email, is_admin=user.is_admin,
                        password_reset_required=user.password_reset_required)


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


# ------------------------------------------------------------------------------------------------
# who is signed in
# ------------------------------------------------------------------------------------------------
def _cookie(name: str) -> str | None:
    value = st.context.cookies.get(name)
    return value if isinstance(value, str) and value else None


def _session_token() -> str | None:
    """This tab's session token: the cookie the browser sent when the tab connected (kept in the
    session state), or the one a test put there."""
    token = _cookie(sessions.SESSION_COOKIE)
    if token is not None:
        st.session_state[SESSION_TOKEN_KEY] = token
        return token
    kept = st.session_state.get(SESSION_TOKEN_KEY)
    return kept if isinstance(kept, str) else None


def current_session_hash() -> str | None:
    """The token hash of this tab's session (local mode), e.g. to spare it when the user signs out
    everywhere else; None when there is none."""
    token = _session_token()
    return sessions.token_hash(token) if token else None


def _resolve_local() -> SignedInUser | None:
    session = sessions.validate_session(_session_token())
    if session is None:  # no session, or one revoked or expired: signed out at this run
        set_signed_in_user(None)
        st.session_state.pop(SESSION_TOKEN_KEY, None)
        return None
    fresh = accounts.get_user(session.user_id)
    if fresh is None:  # account deleted meanwhile
        st.session_state.clear()
        return None
    current = _signed_in(fresh)
    if current != signed_in_user():
        set_signed_in_user(current)
    return current


def _resolve_oidc() -> SignedInUser | None:
    info = st.user.to_dict()
    if not _truthy(info.get("is_logged_in")):
        set_signed_in_user(None)
        st.session_state.pop(OIDC_IDENTITY_KEY, None)
        return None
    subject = str(info.get("sub") or "")
    email = str(info.get("email") or "")
    identity = f"{subject}\n{email}"
    cached = signed_in_user()
    if cached is not None and st.session_state.get(OIDC_IDENTITY_KEY) == identity:
        fresh = accounts.get_user(cached.id)
        if fresh is None:
            # The account was deleted (in another tab, or by its owner elsewhere): sign this
            # session out of the identity too, instead of signing the same person straight back
            # up into a new, empty account.
            sign_out()
            return None
        current = _signed_in(fresh)
        set_signed_in_user(current)
        return current
    set_signed_in_user(None)
    st.session_state.pop(OIDC_IDENTITY_KEY, None)
    try:
        found = accounts.user_for_oidc(
            email=email, subject=subject, email_verified=_truthy(info.get("email_verified"))
        )
    except accounts.AuthError as exc:
        st.session_state[AUTH_ERROR_KEY] = exc.message
        return None
    st.session_state.pop(AUTH_ERROR_KEY, None)
    current = _signed_in(found)
    set_signed_in_user(current)
    st.session_state[OIDC_IDENTITY_KEY] = identity
    return current


def resolve_user(settings: Settings) -> SignedInUser | None:
    """The signed-in user of this browser session, or None (the gate then shows only sign-in)."""
    if settings.auth_mode == "oidc":
        return _resolve_oidc()
    return _resolve_local()


# ------------------------------------------------------------------------------------------------
# sign-in view
# ------------------------------------------------------------------------------------------------
def auth_secrets() -> Mapping[str, object] | None:
    """The ``[auth]`` section of Streamlit's secrets, or None (no section, or no secrets at all)."""
    try:
        section = st.secrets.get("auth")
    except FileNotFoundError:  # no secrets file, or one that cannot be read
        return None
    return section if isinstance(section, Mapping) else None


def _oidc_view() -> None:
    problem = oidc_config_problem(auth_secrets())
    if problem is not None:
        st.error(
            "Sign-in is unavailable: single sign-on is not set up yet. An administrator needs to fix "
            f"this: {literal(problem)}",
            icon=":material/settings_alert:",
        )
        return
    st.write("Advisor uses your organisation's single sign-on. Sign in to continue.")
    error = st.session_state.get(AUTH_ERROR_KEY)
    if isinstance(error, str):
        st.error(error, icon=":material/error:")
    if st.button("Sign in with your identity provider", type="primary", key="oidc_login"):
        st.login()


def _local_view(next_path: str) -> None:
    """The signed-out view inside the app: the sign-in form itself (posting to ``/signin``, as the
    sign-in page does), or a link to that page when the browser has no form token yet."""
    csrf = _cookie(CSRF_COOKIE)
    if csrf is None:
        st.subheader("Sign in")
        st.link_button("Sign in", path_with_next(SIGN_IN_PATH, next_path), type="primary")
    else:
        st.html(sign_in_form(csrf=csrf, next_path=next_path, prefix="app-signin"))
    st.markdown(f"New to Advisor? [Create an account]({path_with_next(SIGN_UP_PATH, next_path)})")


def render_sign_in(next_path: str = "/") -> None:
    """The only view a visitor without a session sees. ``next_path``: the page to return to after
    signing in (a local path)."""
    with guarded("sign-in"):
        st.title("Advisor")
        st.caption("An advisor for engineering leaders that knows your role, stack and style.")
        notice = st.session_state.pop(SIGNED_OUT_NOTICE_KEY, None)
        if isinstance(notice, AccountDeletedNotice):
            notice.show()
        if get_settings().auth_mode == "oidc":
            _oidc_view()
            return
        _local_view(safe_next(next_path))


def sign_out() -> None:
    """End this session's sign-in: the session itself (local mode: revoked on the server, so its
    cookie is refused everywhere from now on), the whole session state and, in OIDC mode, the
    identity cookie (else the gate would sign the same identity straight back in).

    In OIDC mode ``st.logout`` sends the browser to Streamlit's ``/auth/logout`` (which clears the
    cookie, then the provider's end-session page) and this run stops there: a rerun would drop that
    queued redirect before it reached the browser, leaving the cookie in place."""
    if get_settings().auth_mode == "local":
        sessions.revoke_session(_session_token())
    st.session_state.clear()
    if get_settings().auth_mode == "oidc":
        st.logout()
        st.stop()


def render_account_box(user: SignedInUser) -> None:
    """Who is signed in, and the sign-out button."""
    # plain text: an address in Markdown would become a (low-contrast) mailto: link
    st.text(f"Signed in as {user.email}" + (" · admin" if user.is_admin else ""))
    if st.button("Sign out", key="sign_out", icon=":material/logout:"):
        sign_out()
        st.rerun()
