"""Advisor's page router: the script Streamlit runs for every page view (``streamlit_app.py`` serves it).

Settings, the once-per-process boot (``core.startup.boot``; already done by the server's lifespan
hook, done here for ``AppTest`` and after a failed start), the sign-in gate, then ``st.navigation``
over ``pages/``. Every page runs inside this script's gate: this script lives in ``ui/``, so no
``pages/`` folder sits beside it, Streamlit's legacy ``pages/`` discovery never starts, and
``st.navigation`` decides which page runs from a server's very first request. The pages are
therefore listed by absolute path.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.settings import Settings, SettingsError, get_settings
from core.startup import boot
from ui.account_view import render_required_password
from ui.auth_view import auth_secrets, render_account_box, render_sign_in, resolve_user
from ui.frame import guarded

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"

# An emoji icon: the browser draws it from a data: URL. A ``:material/…:`` page icon would be fetched
# from Google's font servers, which the Content-Security-Policy refuses (core.security_headers).
st.set_page_config(page_title="Advisor", page_icon="🧠", layout="wide")


def load_settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        st.error(str(exc))
        st.stop()
        raise  # unreachable: st.stop raises


settings = load_settings()

booted = False
with guarded("boot"):  # e.g. the database is unreachable: a reference id, never a traceback
    boot(settings, auth_section=auth_secrets())
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

if user.password_reset_required:  # an admin forced a reset: a new password before anything else
    nav = st.navigation([st.Page(render_required_password, title="Set a new password", icon=":material/key:")])
    with st.sidebar:
        render_account_box(user)
    nav.run()
    st.stop()

pages = [
    st.Page(PAGES_DIR / "chat.py", title="Chat", icon=":material/chat:", default=True),
    st.Page(PAGES_DIR / "vibe.py", title="Profile & vibe", icon=":material/tune:"),
    st.Page(PAGES_DIR / "prompt_preview.py", title="Prompt preview", icon=":material/visibility:"),
    st.Page(PAGES_DIR / "analytics.py", title="Usage analytics", icon=":material/monitoring:"),
    st.Page(PAGES_DIR / "privacy.py", title="Privacy", icon=":material/shield_person:"),
    st.Page(PAGES_DIR / "account.py", title="Account", icon=":material/manage_accounts:"),
    st.Page(PAGES_DIR / "status.py", title="Status", icon=":material/health_and_safety:"),
]
if user.is_admin:
    pages.append(st.Page(PAGES_DIR / "admin.py", title="Admin", icon=":material/admin_panel_settings:"))

nav = st.navigation(pages)
with st.sidebar:
    render_account_box(user)
nav.run()
