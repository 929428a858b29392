"""Advisor: the entry script. Settings, logging/Sentry, guard, migrations, the sign-in gate, navigation."""

from __future__ import annotations

import streamlit as st

from core.settings import Settings, SettingsError, get_settings

st.set_page_config(page_title="Advisor", page_icon=":material/psychology:", layout="wide")


@st.cache_resource(show_spinner="Starting Advisor…")
def boot(database_url: str) -> str:
    """Once per process (per database): logging, Sentry, the guard, and ``alembic upgrade head``."""
    from core import db, guard
    from core.accounts import forget_stale_signin_addresses
    from core.atoms import app_atoms
    from core.chat import recover_stale_runs
    from core.error_reports import init_sentry
    from core.log_setup import setup_logging
    from core.providers.router import build_router

    settings = get_settings()
    setup_logging(settings)
    init_sentry(settings)
    revision = db.migrate(database_url) if settings.migrate_on_start else (db.current_revision() or "")
    recover_stale_runs()  # runs left pending by a process that stopped mid-answer
    forget_stale_signin_addresses()  # kept only while they serve (ADVISOR_SIGNIN_KNOWN_ADDRESS_DAYS)
    build_router(settings)  # SDK clients built (and imported) once, before the first turn
    app_atoms()  # prompt atoms loaded and validated at start: a malformed atom fails here, loudly
    guard.install_guard(settings)
    return revision


def load_settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        st.error(str(exc))
        st.stop()
        raise  # unreachable: st.stop raises


settings = load_settings()

from ui.auth_view import render_account_box, render_sign_in, resolve_user  # noqa: E402
from ui.frame import guarded  # noqa: E402

booted = False
with guarded("boot"):  # e.g. the database is unreachable: a reference id, never a traceback
    boot(settings.database_url)
    booted = True
if not booted:
    st.stop()

user = None  # an error while resolving the user (reported with a reference) leaves it signed out
with guarded("gate"):
    user = resolve_user(settings)

if user is None:
    nav = st.navigation([st.Page(render_sign_in, title="Sign in", icon=":material/login:")])
    nav.run()
    st.stop()

pages = [
    st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page("pages/vibe.py", title="Profile & vibe", icon=":material/tune:"),
    st.Page("pages/prompt_preview.py", title="Prompt preview", icon=":material/visibility:"),
    st.Page("pages/analytics.py", title="Usage analytics", icon=":material/monitoring:"),
    st.Page("pages/privacy.py", title="Privacy", icon=":material/shield_person:"),
    st.Page("pages/status.py", title="Status", icon=":material/health_and_safety:"),
]
if user.is_admin:
    pages.append(st.Page("pages/admin.py", title="Admin", icon=":material/admin_panel_settings:"))

nav = st.navigation(pages)
with st.sidebar:
    render_account_box(user)
nav.run()
