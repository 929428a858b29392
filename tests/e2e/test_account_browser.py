"""Account self-service in a real browser (C21, C23, C5): a password change keeps this tab signed in
and signs the user's other session out at its next click; the new password signs in, the old one
no longer does. An admin's one-time reset code signs in once, through the real sign-in form, and
"Set a new password" comes before any page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from core import accounts
from core.admin import force_password_reset
from core.settings import reset_settings_cache
from models.schemas import SignUpIn
from tests.conftest import _pg_url
from tests.e2e.conftest import AppServer
from tests.e2e.helpers import BrowserSession
from tests.factories import make_user, random_email

pytestmark = pytest.mark.e2e

PASSWORD = "Account-browser-pw-3"
NEW_PASSWORD = "Account-browser-new-8"


def _expect_signed_in(s: BrowserSession, email: str) -> None:
    expect(s.sidebar).to_contain_text(f"Signed in as {email}")
    expect(s.sidebar.get_by_role("button", name="Sign out", exact=True)).to_be_visible()


def test_a_password_change_signs_the_other_session_out_at_its_next_click(
    session: BrowserSession, browser: Any
) -> None:
    s = session
    email = random_email()
    s.sign_up(email, PASSWORD)
    _expect_signed_in(s, email)

    # another browser (its own cookie jar): the same user's second session
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    other = BrowserSession(context.new_page(), s.base_url, s.shots_dir / "other")
    try:
        other.sign_in(email, PASSWORD)
        _expect_signed_in(other, email)
        other.navigate("Usage analytics")

        s.navigate("Account")
        form = s.main.locator("[data-testid=stForm]")
        form.get_by_label("Current password", exact=True).fill(PASSWORD)
        form.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        form.get_by_label("Repeat the new password", exact=True).fill(NEW_PASSWORD)
        s.click_button("Change password", within=form)
        expect(s.main.get_by_text("Your password was changed. 1 other session signed out.")).to_be_visible()
        s.shot("password-changed")

        # the other session: its next click shows the sign-in view, not the page it asked for
        other.act(other.page.locator("[data-testid=stSidebarNav] a", has_text="Privacy").click)
        other.expect_sign_in_view()
        expect(other.page.get_by_role("button", name=re.compile("Delete my account"))).to_have_count(0)
        other.shot("other-session-signed-out")

        # this tab stays signed in, across a reload
        s.page.reload()
        s.wait_app_if_shown()
        _expect_signed_in(s, email)

        # the old password no longer signs in; the new one does
        other.sign_in(email, PASSWORD)
        expect(other.page.get_by_text("Email or password is incorrect")).to_be_visible()
        other.sign_in(email, NEW_PASSWORD)
        _expect_signed_in(other, email)
    finally:
        context.close()


@pytest.fixture
def app_database(app_server: AppServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point this test process's settings at the app's database (to arrange rows)."""
    monkeypatch.setenv("ADVISOR_DATABASE_URL", _pg_url(app_server.database))
    reset_settings_cache()
    yield
    reset_settings_cache()


def test_a_forced_reset_code_signs_in_once_and_a_new_password_comes_first(
    session: BrowserSession, app_database: None
) -> None:
    s = session
    admin = make_user(is_admin=True)
    email = random_email()
    member = accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    issued = force_password_reset(acting_user_id=admin, target_user_id=member.id)

    s.goto("/signin?next=%2Fanalytics")
    s.sign_in(email, PASSWORD)  # the old password no longer signs in
    expect(s.page.get_by_text("Email or password is incorrect")).to_be_visible()
    s.sign_in(email, issued.code)
    expect(s.main.locator("h1", has_text="Set a new password")).to_be_visible()
    expect(s.page.locator("[data-testid=stSidebarNav]")).to_have_count(0)  # nothing else is reachable
    s.shot("set-a-new-password")

    form = s.main.locator("[data-testid=stForm]")
    form.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    form.get_by_label("Repeat the new password", exact=True).fill(NEW_PASSWORD)
    s.click_button("Set password", within=form)
    expect(s.main.locator("h1", has_text="Usage analytics")).to_be_visible()  # the page asked for
    _expect_signed_in(s, email)

    s.sign_out()
    s.sign_in(email, issued.code)  # used once: gone
    expect(s.page.get_by_text("Email or password is incorrect")).to_be_visible()
    s.sign_in(email, NEW_PASSWORD)
    _expect_signed_in(s, email)
