"""The sign-in gate in a real browser: a visitor without a session sees only the sign-in view, also
when opening a page's URL directly. This module gets its own, freshly started server (the fixtures
are module-scoped), so its first request is the very first one the server process handles.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import BrowserSession

pytestmark = pytest.mark.e2e

PAGE_TITLES = ("Chat", "Profile & vibe", "Prompt preview", "Usage analytics", "Privacy", "Status", "Admin")
PAGE_PATHS = ("/analytics", "/privacy", "/admin", "/chat", "/vibe", "/")


def expect_only_sign_in(s: BrowserSession, path: str) -> None:
    s.goto(path)
    s.shot(f"anonymous{path.replace('/', '-')}")
    s.expect_sign_in_view()
    for title in PAGE_TITLES:
        expect(s.main.locator("h1", has_text=title)).to_have_count(0)
    # no navigation at all: the gate's navigation has a single (hidden) page
    expect(s.page.locator("[data-testid=stSidebarNav]")).to_have_count(0)


def test_first_visitor_of_a_fresh_server_opening_a_page_url_sees_only_sign_in(session: BrowserSession) -> None:
    """The first script run of a new server process, entered through a page URL.

    Regression: Streamlit starts in its legacy pages/ mode and would run pages/analytics.py alone,
    without the entry script's gate (fixed in ui.frame.page()).
    """
    expect_only_sign_in(session, "/analytics")


def test_visitor_opening_page_urls_sees_only_sign_in(session: BrowserSession) -> None:
    for path in PAGE_PATHS:
        expect_only_sign_in(session, path)
