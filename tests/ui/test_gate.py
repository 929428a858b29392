"""The sign-in gate (C4, C5, C21): no session → only the sign-in view on every page."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from core import accounts
from core.db import system_session
from models import User
from models.schemas import SignUpIn
from tests.factories import oidc_auth_section, random_email
from tests.ui.conftest import PAGE_ROUTER, ROOT, TIMEOUT, click_entry, new_app_test, page_file, run_entry
from ui.frame import SESSION_USER_KEY, SignedInUser

PASSWORD = "Gate-canary-pw-42"
DATA_PAGES = [
    "pages/chat.py",
    "pages/vibe.py",
    "pages/prompt_preview.py",
    "pages/analytics.py",
    "pages/privacy.py",
    "pages/status.py",
    "pages/admin.py",
]
SIGN_IN_WIDGETS = {
    "signin_email",
    "signin_password",
    "signup_email",
    "signup_password",
    "signup_confirm",
    "FormSubmitter:sign_in_form-Sign in",
    "FormSubmitter:sign_up_form-Create account",
}


def _widget_keys(at: AppTest) -> set[str]:
    keys: set[str] = set()
    for kind in ("text_input", "button", "selectbox", "multiselect", "slider", "number_input", "chat_input"):
        for w in getattr(at, kind):
            keys.add(w.key or f"{kind}:{w.label}")
    return keys


def assert_sign_in_only(at: AppTest) -> None:
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Advisor"]
    assert _widget_keys(at) == SIGN_IN_WIDGETS
    assert not at.dataframe and not at.chat_message and not at.code
    assert not at.sidebar.button  # no account box, no sign-out


def _is_signed_in(at: AppTest) -> bool:
    user = at.session_state.get(SESSION_USER_KEY, None)
    return isinstance(user, SignedInUser) and [t.value for t in at.title] != ["Advisor"]


def _fill_sign_in(at: AppTest, email: str, password: str) -> AppTest:
    at.text_input(key="signin_email").input(email)
    at.text_input(key="signin_password").input(password)
    return at.button(key="FormSubmitter:sign_in_form-Sign in").click().run()


def test_fresh_visitor_sees_only_sign_in(app) -> None:
    assert_sign_in_only(app(signed_in=False))


def assert_page_refuses(at: AppTest, path: str) -> None:
    """A data page script run on its own without a session shows nothing (defence in depth): only
    "Please sign in."."""
    assert not at.exception, (path, at.exception)
    assert [w.value for w in at.warning] == ["Please sign in."], path
    assert not at.title and not _widget_keys(at) and not at.dataframe and not at.code, path


def test_no_session_every_page_shows_only_sign_in(app) -> None:
    at = app(admin=True)  # registers every page, the admin page too
    assert _is_signed_in(at)
    for path in DATA_PAGES:
        at.switch_page(page_file(path)).run()
        assert not at.exception, (path, at.exception)
        assert _is_signed_in(at), path
    at.session_state[SESSION_USER_KEY] = None  # the session ends
    at.switch_page(page_file(DATA_PAGES[0])).run()  # the page router's gate runs first
    assert_sign_in_only(at)
    run_entry(at)
    assert_sign_in_only(at)
    with pytest.raises(ValueError, match="Known pages: \\['Sign in'\\]"):
        at.switch_page(page_file("pages/vibe.py"))  # no data page is even registered


def test_no_pages_folder_beside_the_page_router() -> None:
    """A ``pages/`` folder beside Streamlit's main script starts its legacy multipage mode, in which a
    page URL runs that page's script on its own, outside the gate. The router lives in ``ui/`` and
    lists ``pages/`` by absolute path, so ``st.navigation`` decides every page from the first request
    (the browser test ``test_gate_browser.py`` shows it on a freshly started server)."""
    assert PAGE_ROUTER.is_file()
    assert not (PAGE_ROUTER.parent / "pages").exists()


def test_page_scripts_run_outside_the_gate_show_nothing(app) -> None:
    for path in DATA_PAGES:
        at = AppTest.from_file(str(ROOT / path), default_timeout=TIMEOUT).run()
        assert_page_refuses(at, path)


def test_sign_up_sign_in_pages_sign_out(app) -> None:
    at = app(signed_in=False)
    email = random_email()
    at.text_input(key="signup_email").input(email)
    at.text_input(key="signup_password").input(PASSWORD)
    at.text_input(key="signup_confirm").input(PASSWORD)
    at.button(key="FormSubmitter:sign_up_form-Create account").click().run()
    assert _is_signed_in(at) and not at.exception
    with system_session() as s:
        row = s.exec(select(User).where(User.email == email)).one()
    assert row.password_hash is not None and row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash

    click_entry(at, "sign_out")
    assert_sign_in_only(at)
    assert SESSION_USER_KEY not in at.session_state

    _fill_sign_in(at, email, PASSWORD)
    assert _is_signed_in(at)
    for path in ("pages/vibe.py", "pages/chat.py", "pages/vibe.py"):
        at.switch_page(page_file(path)).run()
        assert not at.exception and _is_signed_in(at)
    assert [t.value for t in at.title] == ["Profile & vibe"]

    click_entry(at, "sign_out")
    assert_sign_in_only(at)
    assert SESSION_USER_KEY not in at.session_state  # signing out ended access (C21)
    with pytest.raises(ValueError, match="Known pages: \\['Sign in'\\]"):
        at.switch_page(page_file("pages/vibe.py"))
    run_entry(at)
    assert_sign_in_only(at)


def test_sign_up_errors_are_shown_next_to_fields(app) -> None:
    at = app(signed_in=False)
    at.text_input(key="signup_email").input("not-an-email")
    at.text_input(key="signup_password").input(PASSWORD)
    at.text_input(key="signup_confirm").input(PASSWORD)
    at.button(key="FormSubmitter:sign_up_form-Create account").click().run()
    assert [e.value for e in at.error] == ["is not a valid email address"]
    at.text_input(key="signup_email").input(random_email())
    at.text_input(key="signup_password").input("onlylowercaseletters")
    at.text_input(key="signup_confirm").input("onlylowercaseletters")
    at.button(key="FormSubmitter:sign_up_form-Create account").click().run()
    assert len(at.error) == 1 and "Mix at least two kinds" in at.error[0].value
    assert not _is_signed_in(at)
    with system_session() as s:
        assert s.exec(select(User)).all() == []


def test_wrong_password_locks_with_retry_time(app, set_env) -> None:
    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="3", SIGNIN_WINDOW_S="300")
    at = app(signed_in=False)
    email = random_email()
    accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    for _ in range(3):
        _fill_sign_in(at, email, "Wrong-password-1")
        assert [e.value for e in at.error] == ["Email or password is incorrect"]
    _fill_sign_in(at, random_email(), "Wrong-password-1")  # unknown email: same words, now locked
    _fill_sign_in(at, email, PASSWORD)  # even the right password is refused while locked
    assert len(at.error) == 1
    match = re.fullmatch(r"Too many attempts — try again in (\d+) s", at.error[0].value)
    assert match and 0 < int(match.group(1)) <= 300
    assert not _is_signed_in(at)


def test_sign_in_attempts_are_counted_per_client_address(app, set_env, monkeypatch) -> None:
    """The sign-in form passes the client's address (``st.context.ip_address``) to the limiter: new
    browser sessions from one address, each guessing at another email, are stopped; another address
    is not."""
    import ui.auth_view

    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="5", SIGNIN_ATTEMPTS_PER_CLIENT="2", SIGNIN_WINDOW_S="300")
    address = {"value": "203.0.113.9"}
    monkeypatch.setattr(ui.auth_view, "_client_address", lambda: address["value"])
    errors = []
    for _ in range(3):  # a new session (a new AppTest) for every guess
        at = _fill_sign_in(app(signed_in=False), random_email(), "Wrong-password-1")
        errors.append([e.value for e in at.error])
    assert errors[:2] == [["Email or password is incorrect"]] * 2
    assert len(errors[2]) == 1 and errors[2][0].startswith("Too many attempts — try again in"), errors
    address["value"] = "198.51.100.4"
    at = _fill_sign_in(app(signed_in=False), random_email(), "Wrong-password-1")
    assert [e.value for e in at.error] == ["Email or password is incorrect"]


def _fill_sign_up(at: AppTest, email: str, password: str) -> AppTest:
    at.text_input(key="signup_email").input(email)
    at.text_input(key="signup_password").input(password)
    at.text_input(key="signup_confirm").input(password)
    at.button(key="FormSubmitter:sign_up_form-Create account").click().run()
    return at


def test_sign_ups_are_limited_per_client_address(app, set_env, monkeypatch) -> None:
    """The sign-up form passes the client's address (``st.context.ip_address``) to
    ``accounts.sign_up``: an address that has created its accounts for the hour is refused, with
    the reason beside the email field; another address is not."""
    import ui.auth_view

    set_env(SIGNUPS_PER_CLIENT_PER_HOUR="2")
    address = {"value": "203.0.113.9"}
    monkeypatch.setattr(ui.auth_view, "_client_address", lambda: address["value"])
    for _ in range(2):  # a new browser session (a new AppTest) for every account
        at = _fill_sign_up(app(signed_in=False), random_email(), PASSWORD)
        assert _is_signed_in(at) and not at.error
    refused = random_email()
    at = _fill_sign_up(app(signed_in=False), refused, PASSWORD)
    assert not _is_signed_in(at)
    [error] = [e.value for e in at.error]
    assert error.startswith("Too many accounts have been created from your network address: at most 2 per hour. "
                            "Try again in "), error
    with system_session() as s:
        assert s.exec(select(User).where(User.email == refused)).first() is None
    address["value"] = "198.51.100.4"
    assert _is_signed_in(_fill_sign_up(app(signed_in=False), random_email(), PASSWORD))


def test_unknown_email_same_message(app) -> None:
    at = app(signed_in=False)
    email = random_email()
    accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    _fill_sign_in(at, random_email(), PASSWORD)
    unknown = [e.value for e in at.error]
    _fill_sign_in(at, email, PASSWORD + "x")
    assert unknown == [e.value for e in at.error] == ["Email or password is incorrect"]


def test_password_not_in_logs(app, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    at = app(signed_in=False)
    email = random_email()
    at.text_input(key="signup_email").input(email)
    at.text_input(key="signup_password").input(PASSWORD)
    at.text_input(key="signup_confirm").input(PASSWORD)
    at.button(key="FormSubmitter:sign_up_form-Create account").click().run()
    click_entry(at, "sign_out")
    _fill_sign_in(at, email, PASSWORD + "-wrong")
    _fill_sign_in(at, email, PASSWORD)
    assert _is_signed_in(at)
    assert caplog.records
    assert PASSWORD not in caplog.text
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------------------------
# OIDC mode (st.user seeded through AppTest.user)
# ------------------------------------------------------------------------------------------------
def _oidc_app(user: dict[str, object]) -> AppTest:
    at = new_app_test()
    at.secrets["auth"] = oidc_auth_section()  # a complete [auth] section: the sign-in button is offered
    at.user = user
    return at.run()


@pytest.fixture
def oidc(app, set_env):
    set_env(AUTH_MODE="oidc")
    app(signed_in=False)  # migrates the database
    return _oidc_app


def test_oidc_creates_and_reuses_the_user_row(oidc) -> None:
    email = random_email()
    identity = {"is_logged_in": True, "email": email.upper(), "sub": "oidc-sub-1", "email_verified": True}
    at = oidc(identity)
    assert not at.exception and _is_signed_in(at)
    with system_session() as s:
        rows = s.exec(select(User).where(User.email == email)).all()
    assert len(rows) == 1
    row = rows[0]
    assert row.auth_provider == "oidc" and row.password_hash is None and row.oidc_subject == "oidc-sub-1"
    at.switch_page(page_file("pages/vibe.py")).run()
    assert at.session_state[SESSION_USER_KEY].id == row.id
    run_entry(at)  # cached in the session: still the same user
    assert _is_signed_in(at) and at.session_state[SESSION_USER_KEY].id == row.id

    again = oidc(identity)  # a new browser session
    assert _is_signed_in(again) and again.session_state[SESSION_USER_KEY].id == row.id
    with system_session() as s:
        assert len(s.exec(select(User).where(User.email == email)).all()) == 1

    click_entry(again, "sign_out")  # st.logout(): st.user is logged out, the run stops at the redirect
    assert again.user.get("is_logged_in") is False and not again.exception
    run_entry(again)  # the browser's next run, back from /auth/logout
    assert not _is_signed_in(again) and [t.value for t in again.title] == ["Advisor"]
    assert [b.key for b in again.button] == ["oidc_login"]


def test_oidc_unverified_or_logged_out_sees_only_sign_in(oidc) -> None:
    email = random_email()
    at = oidc({"is_logged_in": True, "email": email, "sub": "s-2", "email_verified": False})
    assert not _is_signed_in(at)
    assert [e.value for e in at.error] == ["Your identity provider has not verified this email address."]
    with system_session() as s:
        assert s.exec(select(User).where(User.email == email)).first() is None
    at = oidc({"is_logged_in": False})
    assert not _is_signed_in(at) and [b.key for b in at.button] == ["oidc_login"] and not at.text_input


def test_an_error_in_the_gate_shows_a_reference_and_no_page(app, monkeypatch) -> None:
    """The database fails while the gate looks the user up: a short message with a reference id,
    nobody signed in for that run, and no second error from the page router itself."""
    at = app()
    assert _is_signed_in(at)

    def unavailable(_user_id: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(accounts, "get_user", unavailable)
    run_entry(at)
    assert not at.exception, at.exception
    assert [e.value for e in at.error if "reference" in e.value], [e.value for e in at.error]
    assert not at.sidebar.button and [t.value for t in at.title] == ["Advisor"]


def test_oidc_account_deleted_elsewhere_is_not_signed_up_again(oidc) -> None:
    """Two tabs of the same identity; the account is deleted from one: the other tab's next run
    logs the identity out instead of creating a new, empty account for it."""
    from core.deletion import delete_user

    email = random_email()
    identity = {"is_logged_in": True, "email": email, "sub": "oidc-two-tabs", "email_verified": True}
    tab_b = oidc(identity)
    assert _is_signed_in(tab_b)
    user_id = tab_b.session_state[SESSION_USER_KEY].id
    delete_user(user_id=user_id)  # as tab A's privacy page does
    run_entry(tab_b)
    assert not tab_b.exception
    assert tab_b.user.get("is_logged_in") is False and not _is_signed_in(tab_b)
    with system_session() as s:
        assert s.exec(select(User).where(User.email == email)).first() is None
