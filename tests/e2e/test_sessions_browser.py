"""Local sessions in a real browser (C23, C21, C4): an HttpOnly, server-revocable session cookie.

A reload and a second tab stay signed in; no script on the page can read the token; signing out
revokes it on the server, so a reload, a replay of the old cookie in a fresh browser and the user's
other open tab (at its next click) are all signed out; an expired token is refused; a deep link
while signed out shows the sign-in page (no "Page not found" dialog) and, after signing in, the
page asked for.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, expect

from core.sessions import SESSION_COOKIE, create_session
from core.settings import reset_settings_cache
from models.types import utcnow
from tests.conftest import _pg_url
from tests.e2e.conftest import AppServer
from tests.e2e.helpers import BrowserSession
from tests.factories import make_user, random_email

pytestmark = pytest.mark.e2e

PASSWORD = "Session-browser-pw-7"


@pytest.fixture
def app_database(app_server: AppServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point this test process's settings at the app's database (to arrange rows)."""
    monkeypatch.setenv("ADVISOR_DATABASE_URL", _pg_url(app_server.database))
    reset_settings_cache()
    yield
    reset_settings_cache()


def _session_cookie(page: Page) -> dict[str, Any]:
    found = [dict(c) for c in page.context.cookies() if c.get("name") == SESSION_COOKIE]
    assert len(found) == 1, page.context.cookies()
    return found[0]


def _expect_signed_in(s: BrowserSession, email: str, page: Page | None = None) -> None:
    p = page or s.page
    expect(p.locator("[data-testid=stSidebar]")).to_contain_text(f"Signed in as {email}")
    expect(p.get_by_role("button", name="Sign out")).to_be_visible()


def _new_tab(s: BrowserSession, path: str = "/") -> BrowserSession:
    """A second tab of the same browser (same cookies)."""
    return BrowserSession(s.page.context.new_page(), s.base_url, s.shots_dir / "tab-b")


def _fresh_browser(s: BrowserSession, browser: Any, cookies: list[dict[str, Any]]) -> BrowserSession:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies(cookies)
    return BrowserSession(context.new_page(), s.base_url, s.shots_dir / "fresh")


def _replayable(cookie: dict[str, Any]) -> dict[str, Any]:
    return {k: cookie[k] for k in ("name", "value", "domain", "path", "httpOnly", "secure", "sameSite")}


def _expect_sign_in_page(s: BrowserSession, next_path: str | None = None) -> None:
    """The plain sign-in page (``/signin``), returning to ``next_path`` after signing in."""
    url = urlsplit(s.page.url)
    assert url.path == "/signin", s.page.url
    assert parse_qs(url.query).get("next") == ([next_path] if next_path else None), s.page.url
    s.expect_sign_in_view()


def test_a_reload_and_a_second_tab_stay_signed_in_and_no_script_reads_the_token(
    session: BrowserSession,
) -> None:
    s = session
    email = random_email()
    s.sign_up(email, PASSWORD)
    _expect_signed_in(s, email)
    cookie = _session_cookie(s.page)
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
    assert cookie["secure"] is False  # served over plain http here; https sets Secure
    assert len(cookie["value"]) >= 43  # 256 random bits, URL-safe base64
    assert cookie["expires"] > utcnow().timestamp() + 13 * 86400  # ADVISOR_SESSION_DAYS (14) ahead

    visible_to_scripts = s.page.evaluate("document.cookie")
    assert cookie["value"] not in visible_to_scripts and SESSION_COOKIE not in visible_to_scripts

    s.page.reload()
    s.wait_app_if_shown()
    _expect_signed_in(s, email)
    s.shot("signed-in-after-reload")

    tab_b = _new_tab(s)
    tab_b.goto("/analytics")
    _expect_signed_in(tab_b, email)
    expect(tab_b.main.locator("h1", has_text="Usage analytics")).to_be_visible()
    tab_b.shot("second-tab-signed-in")
    tab_b.page.close()


def test_sign_out_ends_the_session_in_every_tab_and_for_a_replayed_cookie(
    session: BrowserSession, browser: Any
) -> None:
    s = session
    email = random_email()
    s.sign_up(email, PASSWORD)
    _expect_signed_in(s, email)
    old_cookie = _replayable(_session_cookie(s.page))

    tab_b = _new_tab(s)
    tab_b.goto("/analytics")
    _expect_signed_in(tab_b, email)

    s.sign_out()
    s.shot("tab-a-signed-out")

    # tab B: its next click shows the sign-in view, not the page it asked for
    tab_b.act(tab_b.page.locator("[data-testid=stSidebarNav] a", has_text="Privacy").click)
    tab_b.expect_sign_in_view()
    expect(tab_b.page.get_by_text("Page not found")).to_have_count(0)
    expect(tab_b.page.get_by_role("heading", name="Privacy")).to_have_count(0)
    expect(tab_b.page.get_by_role("button", name=re.compile("Delete my account"))).to_have_count(0)
    tab_b.shot("tab-b-signed-out-at-its-next-click")
    tab_b.page.close()

    # a reload of tab A: the sign-in page, and the dead cookie is gone from the browser
    s.page.reload()
    s.wait_app_if_shown()
    _expect_sign_in_page(s)
    assert not [c for c in s.page.context.cookies() if c.get("name") == SESSION_COOKIE]

    # the old cookie replayed in a fresh browser: refused
    fresh = _fresh_browser(s, browser, [old_cookie])
    try:
        fresh.goto("/privacy")
        _expect_sign_in_page(fresh, "/privacy")
        fresh.shot("replayed-cookie-refused")
    finally:
        fresh.page.context.close()

    # signing in again works, from the sign-in page the reload showed
    s.sign_in(email, PASSWORD)
    _expect_signed_in(s, email)


def test_an_expired_token_is_refused_and_a_live_one_accepted(
    session: BrowserSession, browser: Any, app_database: None
) -> None:
    """Tokens made for this test (never seen by the server, so no cached answer): the one whose
    session expired a second ago is refused, the one still live is accepted."""
    s = session
    email = random_email()
    user = make_user(email=email)
    lifetime = timedelta(days=14)
    expired = create_session(user, now=utcnow() - lifetime - timedelta(seconds=1))
    live = create_session(user, now=utcnow() - lifetime + timedelta(minutes=5))
    host = urlsplit(s.base_url).hostname
    for token, accepted in ((expired.token, False), (live.token, True)):
        cookie = {"name": SESSION_COOKIE, "value": token, "domain": host, "path": "/", "httpOnly": True,
                  "secure": False, "sameSite": "Lax"}
        fresh = _fresh_browser(s, browser, [cookie])
        try:
            fresh.goto("/analytics")
            if accepted:
                _expect_signed_in(fresh, email)
                expect(fresh.main.locator("h1", has_text="Usage analytics")).to_be_visible()
            else:
                _expect_sign_in_page(fresh, "/analytics")
                fresh.shot("expired-token-refused")
        finally:
            fresh.page.context.close()


def test_a_deep_link_signed_out_shows_sign_in_then_the_page_asked_for(session: BrowserSession) -> None:
    s = session
    email = random_email()
    s.sign_up(email, PASSWORD)
    s.sign_out()
    s.page.context.clear_cookies()

    s.goto("/analytics")
    _expect_sign_in_page(s, "/analytics")
    expect(s.page.get_by_text("Page not found")).to_have_count(0)
    s.shot("deep-link-sign-in")
    s.sign_in(email, PASSWORD)
    assert urlsplit(s.page.url).path == "/analytics", s.page.url
    expect(s.main.locator("h1", has_text="Usage analytics")).to_be_visible()
    expect(s.page.get_by_text("Page not found")).to_have_count(0)
    _expect_signed_in(s, email)
    s.shot("deep-link-landed")

    # the session ends while the tab is open on a page: the app's own sign-in form returns there
    tab_b = _new_tab(s)
    tab_b.goto("/")
    tab_b.sign_out()
    s.act(s.page.locator("[data-testid=stSidebarNav] a", has_text="Usage analytics").click)
    s.expect_sign_in_view()
    expect(s.page.get_by_text("Page not found")).to_have_count(0)
    s.sign_in(email, PASSWORD)
    assert urlsplit(s.page.url).path == "/analytics", s.page.url
    expect(s.main.locator("h1", has_text="Usage analytics")).to_be_visible()
    tab_b.page.close()


def test_sign_up_with_a_taken_email_or_a_weak_password_shows_why(session: BrowserSession) -> None:
    s = session
    s.goto("/signup")
    form = s.page.locator("form", has=s.page.get_by_role("button", name="Create account"))
    form.get_by_label("Email", exact=True).fill(f"weak-{uuid.uuid4().hex[:6]}@example.com")
    form.get_by_label("Password", exact=True).fill("short")
    form.get_by_label("Repeat password", exact=True).fill("short")
    s.submit(form.get_by_role("button", name="Create account"))
    assert urlsplit(s.page.url).path == "/signup"
    expect(s.page.get_by_role("alert")).to_contain_text("Use at least 10 characters.")
    expect(form.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    s.shot("sign-up-weak-password")
