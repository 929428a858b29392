"""Admin: the accounts (no content), granting admin, per-user quota overrides, forcing a password
reset (the one-time code is shown here once, for the admin to hand over: no email is sent).

The entry script lists this page only for admins; the page checks again against the database.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from core import accounts, admin
from core.db import NotFound
from core.reset_codes import IssuedCode
from core.settings import get_settings
from models.schemas import MAX_EMAIL, QuotaOverrideIn, field_errors
from ui.frame import page
from ui.text import literal, typing_limit

FLASH_KEY = "admin_flash"
RESET_CODE_KEY = "admin_reset_code"  # the code just issued, shown once then dropped

with page("admin") as user:
    st.title("Admin")
    fresh = accounts.get_user(user.id)
    if fresh is None or not fresh.is_admin:
        st.error("Only admins can see this page.", icon=":material/block:")
        st.stop()

    settings = get_settings()
    flash = st.session_state.pop(FLASH_KEY, None)
    if isinstance(flash, str):
        st.success(flash)
    users = admin.list_users(acting_user_id=user.id)
    st.header("Users")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "email": u.email,
                    "admin": u.is_admin,
                    "sign-in": u.auth_provider,
                    "created (UTC)": u.created_at.strftime("%Y-%m-%d %H:%M"),
                    "tokens/day": u.quota_tokens_per_day,
                    "USD/month": float(u.quota_cost_per_month_usd)
                    if u.quota_cost_per_month_usd is not None
                    else None,
                    "reset pending": u.password_reset_required,
                }
                for u in users
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        f"Empty quota cells use the defaults: {settings.tokens_per_day:,} tokens per day and "
        f"${settings.cost_per_month_usd} per month. A quota of 0 blocks chat."
    )

    st.header("Grant admin")
    with st.form("grant_admin_form", clear_on_submit=True):
        email = st.text_input("Email of the user", key="grant_email", max_chars=typing_limit(MAX_EMAIL))
        grant = st.form_submit_button("Grant admin")
    if grant:
        try:
            target = admin.grant_admin(acting_user_id=user.id, target_email=email)
            st.session_state[FLASH_KEY] = f"{literal(target.email)} is now an admin."
            st.rerun()  # redraw the users table with the change
        except NotFound:
            st.error("No user with that email.")
        except accounts.AuthError as exc:
            st.error(exc.message)

    st.header("Quota overrides")
    by_email = {u.email: u for u in users}
    chosen = st.selectbox("User", list(by_email), key="quota_user", index=None, placeholder="Choose a user")
    if chosen is not None:
        target_user = by_email[chosen]
        with st.form("quota_form"):
            tokens = st.number_input(
                "Tokens per day (empty = default)",
                min_value=0,
                step=1000,
                value=target_user.quota_tokens_per_day,
                key=f"quota_tokens_{target_user.id}",  # per user: another user's values never carry over
            )
            tokens_error = st.empty()
            cost = st.number_input(
                "USD per month (empty = default)",
                min_value=0.0,
                step=5.0,
                format="%.2f",
                value=float(target_user.quota_cost_per_month_usd)
                if target_user.quota_cost_per_month_usd is not None
                else None,
                key=f"quota_cost_{target_user.id}",
            )
            cost_error = st.empty()
            save = st.form_submit_button("Save overrides")
        if save:
            try:
                data = QuotaOverrideIn(
                    user_id=target_user.id,
                    tokens_per_day=int(tokens) if tokens is not None else None,
                    cost_per_month_usd=Decimal(str(cost)) if cost is not None else None,
                )
            except ValidationError as exc:
                errors = field_errors(exc)
                slots = {"tokens_per_day": tokens_error, "cost_per_month_usd": cost_error}
                for field, message in errors.items():
                    slots.get(field, tokens_error).error(message)
            else:
                try:
                    admin.set_quota_override(acting_user_id=user.id, data=data)
                    st.session_state[FLASH_KEY] = f"Quota overrides saved for {chosen}."
                    st.rerun()  # redraw the users table with the change
                except (NotFound, accounts.AuthError):
                    st.error("Could not save: the user no longer exists or you are no longer an admin.")

    st.subheader("Force a password reset")
    st.caption(
        "The user's password stops working and they are signed out everywhere. You get a one-time code to "
        "hand them (Advisor sends no email): it signs them in once, within 24 hours, and they must then "
        "choose a new password before anything else."
    )
    issued = st.session_state.pop(RESET_CODE_KEY, None)
    if isinstance(issued, IssuedCode):
        st.success(
            f"Hand this one-time code to {literal(issued.email)}. It is shown only now and works until "
            f"{issued.expires_at:%Y-%m-%d %H:%M} UTC.",
            icon=":material/key:",
        )
        st.code(issued.code, language=None)
    resettable = {u.email: u for u in users if u.auth_provider == "local" and u.id != user.id}
    target_email = st.selectbox(
        "User", list(resettable), key="reset_user", index=None, placeholder="Choose a user"
    )
    if st.button("Force password reset", key="force_reset", disabled=target_email is None) and target_email:
        try:
            st.session_state[RESET_CODE_KEY] = admin.force_password_reset(
                acting_user_id=user.id, target_user_id=resettable[target_email].id
            )
            st.rerun()  # the table shows the pending reset; the code is shown once above it
        except NotFound:
            st.error("That user no longer exists.")
        except accounts.AuthError as exc:
            st.error(exc.message)
