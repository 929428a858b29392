"""Account self-service in a real browser (C21, C23): a password change keeps this tab signed in
and signs the user's other session out at its next click; the new password signs in, the old one
no longer does."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import BrowserSession
from tests.factories import random_email

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
