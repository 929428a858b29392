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
from typing import Literal
from urllib.parse import urlencode

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

def app_pages(*, is_admin: bool, hidden: bool = False) -> list[st.Page]:
    """The app's pages (the Admin page for admins, or when ``hidden``), Chat the start page.
    ``hidden``: the pages listed, hidden, in the signed-out view (see below), Chat left out."""
    visibility: Literal["visible", "hidden"] = "hidden" if hidden else "visible"
    pages = [
        st.Page(PAGES_DIR / "search.py", title="Search", icon=":material/search:", visibility=visibility),
        st.Page(PAGES_DIR / "vibe.py", title="Profile & vibe", icon=":material/tune:", visibility=visibility),
        st.Page(PAGES_DIR / "prompt_preview.py", title="Prompt preview", icon=":material/visibility:",
                visibility=visibility),
        st.Page(PAGES_DIR / "analytics.py", title="Usage analytics", icon=":material/monitoring:",
                visibility=visibility),
        st.Page(PAGES_DIR / "privacy.py", title="Privacy", icon=":material/shield_person:", visibility=visibility),
        st.Page(PAGES_DIR / "account.py", title="Account", icon=":material/manage_accounts:", visibility=visibility),
        st.Page(PAGES_DIR / "status.py", title="Status", icon=":material/health_and_safety:", visibility=visibility),
    ]
    if is_admin or hidden:
        pages.append(st.Page(PAGES_DIR / "admin.py", title="Admin", icon=":material/admin_panel_settings:",
                             visibility=visibility))
    if hidden:
        return pages
    return [st.Page(PAGES_DIR / "chat.py", title="Chat", icon=":material/chat:", default=True), *pages]


def return_path(page: st.Page) -> str:
    """Where signing in returns this tab to: the page it shows (with its query), as a local path."""
    query = urlencode(st.query_params.to_dict())
    path = f"/{page.url_path}"
    return f"{path}?{query}" if query else path


if user is None:
    # Signed out: the app's pages are listed (hidden), so that the page this tab asked for (a deep
    # link, or the page open when its session ended) resolves without a "Page not found" dialog and
    # is where the sign-in form returns to. None of them runs: only the sign-in view is drawn. The
    # sign-in view takes the start page's place (Chat's URL path, "/"), so a tab at "/" stays there.
    sign_in_page = st.Page(render_sign_in, title="Sign in", icon=":material/login:", url_path="chat", default=True)
    asked = st.navigation([sign_in_page, *app_pages(is_admin=False, hidden=True)], position="hidden")
    render_sign_in(return_path(asked))
    st.stop()

if user.password_reset_required:
    # An admin forced a password reset: a new password before anything else. As when signed out, the
    # app's pages are listed hidden (the tab keeps the page it asked for, and shows it once the new
    # password is set), and none of them runs.
    reset_page = st.Page(render_required_password, title="Set a new password", icon=":material/key:",
                         url_path="chat", default=True)
    st.navigation([reset_page, *app_pages(is_admin=user.is_admin, hidden=True)], position="hidden")
    with st.sidebar:
        render_account_box(user)
    render_required_password()
    st.stop()

nav = st.navigation(app_pages(is_admin=user.is_admin))
with st.sidebar:
    render_account_box(user)
nav.run()
