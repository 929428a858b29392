"""The sign-in gate's views: who is signed in, the sign-in / create-account forms, the account box.

Local mode keeps the signed-in user in ``st.session_state`` (re-checked against the database on
every run, so a deleted account or a revoked admin takes effect at once). OIDC mode trusts
Streamlit's ``st.user`` (its signed identity cookie) and maps it to a user row once per session.
Signing out clears the whole session state (and, in OIDC mode, the identity cookie).

OIDC mode reads Streamlit's ``[auth]`` secrets section (``auth_secrets``): when it cannot work
(``core.oidc_config``), the sign-in view says what is missing instead of offering a button that fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import streamlit as st
from pydantic import ValidationError

from core import accounts, limits
from core.limits import LimitExceeded
from core.oidc_config import oidc_config_problem
from core.settings import Settings, get_settings
from models.schemas import MAX_EMAIL, MAX_PASSWORD, SignInIn, SignUpIn, error_lines, field_errors
from ui.frame import SignedInUser, guarded, set_signed_in_user, signed_in_user
from ui.text import literal, typing_limit

SIGNIN_KEY = "advisor_signin_key"
OIDC_IDENTITY_KEY = "advisor_oidc_identity"
AUTH_ERROR_KEY = "advisor_auth_error"
SIGNED_OUT_NOTICE_KEY = "advisor_signed_out_notice"

__all__ = [
    "AccountDeletedNotice",
    "auth_secrets",
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


def _client_address() -> str | None:
    """The client's address (failed sign-ins are also counted per address): the connection's peer
    (None on localhost), or behind ``ADVISOR_TRUSTED_PROXY_HOPS`` proxies what the outermost saw."""
    hops = get_settings().trusted_proxy_hops
    peer = st.context.ip_address
    forwarded = st.context.headers.get_all("X-Forwarded-For") if hops else []
    return limits.client_address(  # (type checks: AppTest's client context is a mock object)
        peer if isinstance(peer, str) else None,
        [h for h in forwarded if isinstance(h, str)] if isinstance(forwarded, list) else [],
        hops,
    )


def _session_key() -> str:
    """A random key per browser session: failed sign-ins are also counted per session."""
    key = st.session_state.get(SIGNIN_KEY)
    if not isinstance(key, str):
        key = uuid.uuid4().hex
        st.session_state[SIGNIN_KEY] = key
    return key


def _truthy(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


# ------------------------------------------------------------------------------------------------
# who is signed in
# ------------------------------------------------------------------------------------------------
def _resolve_local() -> SignedInUser | None:
    user = signed_in_user()
    if user is None:
        return None
    fresh = accounts.get_user(user.id)
    if fresh is None:  # account deleted meanwhile
        st.session_state.clear()
        return None
    current = _signed_in(fresh)
    if current != user:
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
def _sign_in_form() -> None:
    with st.form("sign_in_form", clear_on_submit=True):
        email = st.text_input("Email", key="signin_email", max_chars=typing_limit(MAX_EMAIL))
        password = st.text_input(
            "Password", type="password", key="signin_password", max_chars=typing_limit(MAX_PASSWORD)
        )
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    try:
        data = SignInIn(email=email, password=password)
    except ValidationError as exc:  # the form of what was typed (says nothing about any account)
        for line in error_lines(exc):
            st.error(line, icon=":material/error:")
        return
    try:
        user = accounts.sign_in(data, session_key=_session_key(), client=_client_address())
    except LimitExceeded as exc:
        st.error(exc.message, icon=":material/lock_clock:")
        return
    except accounts.AuthError as exc:
        st.error(exc.message, icon=":material/error:")
        return
    set_signed_in_user(_signed_in(user))
    st.rerun()


def _sign_up_form() -> None:
    minimum = get_settings().min_password_length
    with st.form("sign_up_form"):
        email = st.text_input("Email", key="signup_email", max_chars=typing_limit(MAX_EMAIL))
        email_error = st.empty()
        password = st.text_input(
            "Password",
            type="password",
            key="signup_password",
            max_chars=typing_limit(MAX_PASSWORD),
            help=f"At least {minimum} characters, mixing letters, digits or symbols.",
        )
        password_error = st.empty()
        confirm = st.text_input(
            "Repeat password", type="password", key="signup_confirm", max_chars=typing_limit(MAX_PASSWORD)
        )
        confirm_error = st.empty()
        submitted = st.form_submit_button("Create account", type="primary")
    if not submitted:
        return
    slots = {"email": email_error, "password": password_error, "confirm_password": confirm_error}
    try:
        data = SignUpIn(email=email, password=password, confirm_password=confirm)
    except ValidationError as exc:
        for field, message in field_errors(exc).items():
            slots.get(field, email_error).error(message)
        return
    try:
        user = accounts.sign_up(data, session_key=_session_key(), client=_client_address())
    except LimitExceeded as exc:
        email_error.error(exc.message)
        return
    except accounts.AuthError as exc:
        slots.get(exc.field, email_error).error(exc.message)
        return
    set_signed_in_user(_signed_in(user))
    st.rerun()


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


def render_sign_in() -> None:
    """The only view a visitor without a session sees."""
    with guarded("sign-in"):
        st.title("Advisor")
        st.caption("An advisor for engineering leaders that knows your role, stack and style.")
        notice = st.session_state.pop(SIGNED_OUT_NOTICE_KEY, None)
        if isinstance(notice, AccountDeletedNotice):
            notice.show()
        if get_settings().auth_mode == "oidc":
            _oidc_view()
            return
        tab_in, tab_up = st.tabs(["Sign in", "Create account"])
        with tab_in:
            _sign_in_form()
        with tab_up:
            _sign_up_form()


def sign_out() -> None:
    """End this session's sign-in: the whole session state and, in OIDC mode, the identity cookie
    (else the gate would sign the same identity straight back in).

    In OIDC mode ``st.logout`` sends the browser to Streamlit's ``/auth/logout`` (which clears the
    cookie, then the provider's end-session page) and this run stops there: a rerun would drop that
    queued redirect before it reached the browser, leaving the cookie in place."""
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
