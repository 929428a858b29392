"""The account page's views: who you are, changing your password, signing out everywhere; and the
one view of an account whose admin forced a password reset ("Set a new password").

Each form validates through ``models.schemas`` (messages written for people, naming the limit) and
acts through ``core.credentials``; its messages are shown beside the field they are about. A
password change keeps this browser's session (its cookie's token, ``core.sessions``) and ends the
user's others.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from pydantic import ValidationError

from core import accounts, credentials
from core.rate_limits import LimitExceeded
from core.settings import get_settings
from models.schemas import MAX_PASSWORD, ChangePasswordIn, NewPasswordIn, field_errors
from ui.auth_view import current_session_hash, sign_out
from ui.frame import SignedInUser, guarded, signed_in_user
from ui.text import literal, typing_limit

__all__ = ["render_account", "render_change_password", "render_required_password", "render_sign_out_everywhere"]

FLASH_KEY = "account_flash"


def _show_errors(slots: dict[str, Any], errors: dict[str, str], fallback: str) -> None:
    for field, message in errors.items():
        slots.get(field, slots[fallback]).error(message)


def _password_boxes(*, minimum: int) -> tuple[str, Any, str, Any]:
    new = st.text_input(
        "New password",
        type="password",
        key="new_password",
        max_chars=typing_limit(MAX_PASSWORD),
        help=f"At least {minimum} characters, mixing letters, digits or symbols.",
    )
    new_error = st.empty()
    confirm = st.text_input(
        "Repeat the new password", type="password", key="confirm_password", max_chars=typing_limit(MAX_PASSWORD)
    )
    return new, new_error, confirm, st.empty()


def render_change_password(user: SignedInUser) -> None:
    """The change-password form: the current password, then the new one twice."""
    minimum = get_settings().min_password_length
    with st.form("change_password_form", clear_on_submit=True):
        current = st.text_input(
            "Current password", type="password", key="current_password", max_chars=typing_limit(MAX_PASSWORD)
        )
        current_error = st.empty()
        new, new_error, confirm, confirm_error = _password_boxes(minimum=minimum)
        submitted = st.form_submit_button("Change password", type="primary")
    if not submitted:
        return
    slots = {"current_password": current_error, "new_password": new_error, "confirm_password": confirm_error}
    try:
        data = ChangePasswordIn(current_password=current, new_password=new, confirm_password=confirm)
    except ValidationError as exc:
        _show_errors(slots, field_errors(exc), "current_password")
        return
    try:
        ended = credentials.change_password(user_id=user.id, data=data, keep_token_hash=current_session_hash())
    except LimitExceeded as exc:
        current_error.error(exc.message, icon=":material/lock_clock:")
        return
    except accounts.AuthError as exc:
        _show_errors(slots, {exc.field: exc.message}, "current_password")
        return
    others = f" {ended} other session{'s' if ended != 1 else ''} signed out." if ended else ""
    st.session_state[FLASH_KEY] = f"Your password was changed.{others}"
    st.rerun()


def render_sign_out_everywhere(user: SignedInUser) -> None:
    """End every session of the user, in every browser, this one too."""
    st.write("Signs you out in every browser and on every device where you are signed in, this one too.")
    if st.button("Sign out everywhere", key="sign_out_everywhere", icon=":material/logout:"):
        credentials.sign_out_everywhere(user_id=user.id)
        sign_out()
        st.rerun()


def render_required_password() -> None:
    """The only view of an account whose admin forced a password reset: set a new one first."""
    with guarded("set-password"):
        user = signed_in_user()
        if user is None:
            st.stop()
            return
        st.title("Set a new password")
        st.write(f"An admin reset the password of **{literal(user.email)}**. Choose a new one to continue.")
        with st.form("new_password_form", clear_on_submit=True):
            new, new_error, confirm, confirm_error = _password_boxes(minimum=get_settings().min_password_length)
            submitted = st.form_submit_button("Set password", type="primary")
        if not submitted:
            return
        slots = {"new_password": new_error, "confirm_password": confirm_error}
        try:
            data = NewPasswordIn(new_password=new, confirm_password=confirm)
            credentials.set_new_password(user_id=user.id, data=data, keep_token_hash=current_session_hash())
        except ValidationError as exc:
            _show_errors(slots, field_errors(exc), "new_password")
            return
        except accounts.AuthError as exc:
            _show_errors(slots, {exc.field: exc.message}, "new_password")
            return
        st.rerun()  # the gate now opens every page


def render_account(user: SignedInUser) -> None:
    """The account page: who is signed in and, for a password account, the password change."""
    st.title("Account")
    flash = st.session_state.pop(FLASH_KEY, None)
    if isinstance(flash, str):
        st.success(flash, icon=":material/check:")
    st.write(f"Signed in as **{literal(user.email)}**" + (" (admin)" if user.is_admin else "") + ".")
    st.header("Change password")
    if get_settings().auth_mode != "local":
        st.info(credentials.NOT_LOCAL, icon=":material/badge:")
        return
    render_change_password(user)
    st.subheader("Sign out everywhere")
    render_sign_out_everywhere(user)
