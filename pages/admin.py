"""Admin: the accounts (no content), granting admin, per-user quota overrides.

The entry script lists this page only for admins; the page checks again against the database.
"""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from core import accounts, admin
from core.db import NotFound
from core.settings import get_settings
from models.schemas import MAX_EMAIL, QuotaOverrideIn, field_errors
from ui.frame import page
from ui.text import literal, typing_limit

FLASH_KEY = "admin_flash"

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
