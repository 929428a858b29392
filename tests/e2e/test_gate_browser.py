"""The sign-in gate in a real browser: a visitor without a session sees only the sign-in view, also
when opening a page's URL directly. This module gets its own, freshly started server (the fixtures
are module-scoped), so its first request is the very first one the server process handles.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import BrowserSession

pytestmark = pytest.mark.e2e

# Known bug (reported): until some session has run the entry script (st.navigation) in the server
# process, Streamlit's legacy pages/ mode (PagesManager.uses_pages_directory) runs a page script
# opened by URL directly — no boot (guard, migrations), no gate — and lists every file of pages/ in
# the sidebar. ui/frame.page() still stops with "Please sign in.", so no data is shown. Remove this
# marker with the fix (strict: the tests fail as XPASS once the gate holds).
LEGACY_PAGES_BUG = pytest.mark.xfail(
    strict=True,
    reason="fresh server: a page URL runs pages/<name>.py without the entry script (Streamlit MPA v1 mode)",
)

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


@LEGACY_PAGES_BUG
def test_first_visitor_of_a_fresh_server_opening_a_page_url_sees_only_sign_in(session: BrowserSession) -> None:
    """The first script run of a new server process, entered through a page URL."""
    expect_only_sign_in(session, "/analytics")


@LEGACY_PAGES_BUG
def test_visitor_opening_page_urls_sees_only_sign_in(session: BrowserSession) -> None:
    for path in PAGE_PATHS:
        expect_only_sign_in(session, path)
