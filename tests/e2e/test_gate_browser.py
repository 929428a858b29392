"""The sign-in gate in a real browser: a visitor without a session sees only the sign-in page, also
when opening a page's URL directly (``core.auth_routes.SessionGate`` sends the page load there).
This module gets its own, freshly started server (the fixtures are module-scoped), so its first
request is the very first one the server process handles.

No page script runs outside the gate: a page script run on its own, without a session, would show
its frame's "Please sign in." (``ui.frame.page``); the gate shows the sign-in form instead.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.auth_pages import SIGN_IN_PATH, path_with_next
from tests.e2e.helpers import BrowserSession

pytestmark = pytest.mark.e2e

PAGE_TITLES = ("Chat", "Profile & vibe", "Prompt preview", "Usage analytics", "Privacy", "Status", "Admin")
PAGE_PATHS = ("/analytics", "/privacy", "/admin", "/chat", "/vibe", "/")


def expect_only_sign_in(s: BrowserSession, path: str) -> None:
    s.goto(path)
    s.shot(f"anonymous{path.replace('/', '-')}")
    # sent to the sign-in page before the app is served, to come back to the page asked for
    assert s.page.url == s.base_url + path_with_next(SIGN_IN_PATH, path), s.page.url
    s.expect_sign_in_view()
    expect(s.page.get_by_text("Page not found")).to_have_count(0)
    expect(s.main.get_by_text("Please sign in.")).to_have_count(0)  # no page script ran on its own
    for title in PAGE_TITLES:
        expect(s.main.locator("h1", has_text=title)).to_have_count(0)
    # no navigation at all: the gate's navigation has a single (hidden) page
    expect(s.page.locator("[data-testid=stSidebarNav]")).to_have_count(0)


def test_first_visitor_of_a_fresh_server_opening_a_page_url_sees_only_sign_in(session: BrowserSession) -> None:
    """The first script run of a new server process, entered through a page URL.

    Streamlit starts in its legacy pages/ mode when a ``pages/`` folder sits beside its main script,
    and would then run pages/analytics.py alone, without the gate. The page router lives in ``ui/``,
    so ``st.navigation`` routes this first request too.
    """
    expect_only_sign_in(session, "/analytics")


def test_visitor_opening_page_urls_sees_only_sign_in(session: BrowserSession) -> None:
    for path in PAGE_PATHS:
        expect_only_sign_in(session, path)
