"""The account page's views: who you are, changing your password.

Each form validates through ``models.schemas`` (messages written for people, naming the limit) and
acts through ``core.credentials``; its messages are shown beside the field they are about.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from pydantic import ValidationError

from core import accounts, credentials
from core.rate_limits import LimitExceeded
from core.settings import get_settings
from models.schemas import MAX_PASSWORD, ChangePasswordIn, field_errors
from ui.frame import SignedInUser
from ui.text import literal, typing_limit

__all__ = ["render_account", "render_change_password"]

FLASH_KEY = "account_flash"


def _show_errors(slots: dict[str, Any], errors: dict[str, str], fallback: str) -> None:
    for field, message in errors.items():
        slots.get(field, slots[fallback]).error(message)


def render_change_password(user: SignedInUser) -> None:
    """The change-password form: the current password, then the new one twice."""
    minimum = get_settings().min_password_length
    with st.form("change_password_form", clear_on_submit=True):
        current = st.text_input(
            "Current password", type="password", key="current_password", max_chars=typing_limit(MAX_PASSWORD)
        )
        current_error = st.empty()
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
        confirm_error = st.empty()
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
        credentials.change_password(user_id=user.id, data=data)
    except LimitExceeded as exc:
        current_error.error(exc.message, icon=":material/lock_clock:")
        return
    except accounts.AuthError as exc:
        _show_errors(slots, {exc.field: exc.message}, "current_password")
        return
    st.session_state[FLASH_KEY] = "Your password was changed."
    st.rerun()


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
