"""Single sign-on in a real browser against a real OpenID Connect provider (C4, C21).

The app runs as ``make run`` starts it (``streamlit run streamlit_app.py``, read-only guard enforced)
with ``ADVISOR_AUTH_MODE=oidc`` and an ``[auth]`` section naming ``oidc-provider-mock``, a real
OIDC provider process on loopback (``tests/stubs/oidc_provider.py``) at which the app is a
registered confidential client. Chromium clicks "Sign in with your identity provider", goes
through Streamlit's ``/auth/login`` to the provider's authorization form, types the subject there,
comes back through ``/oauth2callback`` (authorization code exchanged for signed tokens by the
app's server, nonce and state checked by Authlib) and lands on the chat page.

Signing out goes through Streamlit's ``/auth/logout``, which clears the identity cookie and sends
the browser to the provider's end-session page; back at the app, a reload shows the sign-in page.

A server whose ``[auth]`` section is incomplete says so in one line at start and shows the same
problem on the sign-in page, with no sign-in button.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlmodel import select

from core.db import system_session
from core.settings import reset_settings_cache
from models import User
from tests.conftest import _pg_url
from tests.e2e.conftest import AppServer, running_oidc_app
from tests.e2e.helpers import BrowserSession
from tests.factories import fill_user, random_email
from tests.stubs.oidc_provider import OidcProvider

pytestmark = pytest.mark.e2e

IDENTITY_COOKIE = "_streamlit_user"  # Streamlit's signed identity cookie (st.login / st.logout)
SIGN_IN_BUTTON = "Sign in with your identity provider"


@pytest.fixture
def app_database(oidc_app_server: AppServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point this test process's settings at the app's database (to arrange and check rows)."""
    monkeypatch.setenv("ADVISOR_DATABASE_URL", _pg_url(oidc_app_server.database))
    reset_settings_cache()
    yield
    reset_settings_cache()


def _identity_cookies(s: BrowserSession) -> list[dict[str, Any]]:
    return [dict(c) for c in s.page.context.cookies() if str(c.get("name", "")).startswith(IDENTITY_COOKIE)]


def _expect_oidc_sign_in_view(s: BrowserSession) -> None:
    expect(s.main.locator("h1", has_text="Advisor")).to_be_visible()
    expect(s.page.get_by_role("button", name=SIGN_IN_BUTTON)).to_be_visible()
    expect(s.page.get_by_role("button", name="Sign out")).to_have_count(0)
    expect(s.page.locator("[data-testid=stSidebarNav]")).to_have_count(0)


def _sign_in_at_provider(s: BrowserSession, idp: OidcProvider, subject: str) -> None:
    """From the app's sign-in view, through the provider's authorization form, back to the app."""
    s.goto("/")
    _expect_oidc_sign_in_view(s)
    s.shot("sign-in-view")
    s.page.get_by_role("button", name=SIGN_IN_BUTTON).click()
    s.page.wait_for_url(re.compile(re.escape(f"{idp.url}/oauth2/authorize")))
    expect(s.page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    s.shot("provider-authorization-form")
    s.page.locator("input[name=sub]").fill(subject)
    s.page.get_by_role("button", name="Authorize", exact=True).click()
    s.page.wait_for_url(re.compile(re.escape(s.base_url) + r"/?(\?.*)?$"))  # back from /oauth2callback
    s.wait_idle()


def _expect_chat_page(s: BrowserSession, email: str) -> None:
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()
    expect(s.sidebar.get_by_text(f"Signed in as {email}")).to_be_visible()
    expect(s.page.get_by_role("button", name=SIGN_IN_BUTTON)).to_have_count(0)


def _sign_out_and_reload(s: BrowserSession, idp: OidcProvider) -> None:
    """Sign out: the identity cookie is gone at the provider's end-session page; back at the app,
    the sign-in view, also after a reload."""
    s.page.get_by_role("button", name="Sign out").click()
    s.page.wait_for_url(re.compile(re.escape(f"{idp.url}/oauth2/end_session")))
    s.shot("provider-end-session")
    assert _identity_cookies(s) == [], "the identity cookie survived the sign-out"
    s.page.get_by_role("button", name="End session").click()
    s.page.wait_for_url(re.compile(re.escape(s.base_url) + r"/?(\?.*)?$"))
    s.wait_idle()
    _expect_oidc_sign_in_view(s)
    s.page.reload()
    s.wait_idle()
    _expect_oidc_sign_in_view(s)
    s.shot("signed-out-after-reload")
    assert _identity_cookies(s) == []


def test_sign_in_creates_an_account_lands_on_chat_and_signs_out(
    oidc_session: BrowserSession, oidc_provider: OidcProvider, app_database: None
) -> None:
    s = oidc_session
    subject = f"new-{uuid.uuid4().hex[:10]}"
    email = random_email()
    oidc_provider.set_user(subject, email=email, email_verified=True, name="New Person")

    _sign_in_at_provider(s, oidc_provider, subject)
    _expect_chat_page(s, email)
    s.shot("signed-in-chat")

    with system_session() as db:
        rows = db.exec(select(User).where(User.email == email)).all()
    assert len(rows) == 1, "a fresh account is created on the first sign-in"
    assert rows[0].auth_provider == "oidc" and rows[0].oidc_subject == subject and rows[0].password_hash is None

    cookies = _identity_cookies(s)
    assert cookies and all(c["httpOnly"] for c in cookies), cookies
    assert IDENTITY_COOKIE not in s.page.evaluate("document.cookie")

    s.page.reload()  # the identity cookie keeps the browser signed in
    s.wait_idle()
    _expect_chat_page(s, email)

    _sign_out_and_reload(s, oidc_provider)


def test_existing_account_is_linked_by_its_verified_email(
    oidc_session: BrowserSession, oidc_provider: OidcProvider, app_database: None
) -> None:
    """An account that exists before its first single sign-on (an OIDC account without a subject
    yet, as ``core.accounts.user_for_oidc`` links them) is the one the person lands in, with its data."""
    s = oidc_session
    email = random_email()
    tag = uuid.uuid4().hex[:8]
    with system_session() as db:
        user = User(email=email, auth_provider="oidc", password_hash=None, oidc_subject=None)
        db.add(user)
    fill_user(user.id, runs=1, marker=tag)
    subject = f"linked-{tag}"
    oidc_provider.set_user(subject, email=email.upper(), email_verified=True)

    _sign_in_at_provider(s, oidc_provider, subject)
    _expect_chat_page(s, email)
    expect(s.sidebar.get_by_role("button", name=re.compile(f"conv {tag}"))).to_be_visible()
    s.shot("linked-account-chat")

    with system_session() as db:
        rows = db.exec(select(User).where(User.email == email)).all()
    assert [(r.id, r.oidc_subject) for r in rows] == [(user.id, subject)]

    _sign_out_and_reload(s, oidc_provider)


def test_unverified_email_or_a_password_account_is_not_signed_in(
    oidc_session: BrowserSession, oidc_provider: OidcProvider, app_database: None
) -> None:
    """The current rules: an email the provider has not verified signs nobody in, and neither does
    the email of a password account (an admin migrates it)."""
    s = oidc_session
    email = random_email()
    subject = f"unverified-{uuid.uuid4().hex[:8]}"
    oidc_provider.set_user(subject, email=email, email_verified=False)
    _sign_in_at_provider(s, oidc_provider, subject)
    expect(s.main.get_by_text("Your identity provider has not verified this email address.")).to_be_visible()
    expect(s.page.get_by_role("button", name="Sign out")).to_have_count(0)
    with system_session() as db:
        assert db.exec(select(User).where(User.email == email)).first() is None

    s.page.context.clear_cookies()
    local_email = random_email()
    with system_session() as db:
        db.add(User(email=local_email, auth_provider="local", password_hash="$argon2id$placeholder"))
    subject = f"takeover-{uuid.uuid4().hex[:8]}"
    oidc_provider.set_user(subject, email=local_email, email_verified=True)
    _sign_in_at_provider(s, oidc_provider, subject)
    expect(s.main.get_by_text("This email belongs to a password account")).to_be_visible()
    expect(s.page.get_by_role("button", name="Sign out")).to_have_count(0)
    with system_session() as db:
        row = db.exec(select(User).where(User.email == local_email)).one()
    assert row.auth_provider == "local" and row.oidc_subject is None


def test_incomplete_auth_section_is_one_line_at_start_and_a_message_on_the_sign_in_page(
    browser: Any, pg_template: str, tmp_path: Path
) -> None:
    def incomplete(app_url: str) -> dict[str, str]:
        return {"redirect_uri": f"{app_url}/oauth2callback", "cookie_secret": "x" * 64, "client_id": "advisor"}

    with running_oidc_app(pg_template, tmp_path / "server", incomplete) as server:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        try:
            s = BrowserSession(context.new_page(), server.url, tmp_path / "screenshots")
            for path in ("/", "/analytics"):
                s.goto(path)
                expect(s.main.locator("h1", has_text="Advisor")).to_be_visible()
                alert = s.main.get_by_text("Sign-in is unavailable: single sign-on is not set up yet.")
                expect(alert).to_be_visible()
                expect(alert).to_contain_text("client_secret, server_metadata_url")
                expect(s.page.get_by_role("button", name=SIGN_IN_BUTTON)).to_have_count(0)
            s.shot("not-configured")
        finally:
            context.close()
        output = server.output()
    lines = [line for line in output.splitlines() if "OIDC sign-in is not configured" in line]
    assert len(lines) == 1, output
    assert "the [auth] section lacks client_secret, server_metadata_url" in lines[0]
    assert "x" * 64 not in output  # the line names keys, never values
