"""The sign-in gate (C4, C21, C23): no valid session → only the sign-in view on every page."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import update
from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from core import accounts, sessions
from core.db import system_session
from models import User, UserSession
from models.types import utcnow
from tests.factories import make_user, oidc_auth_section, random_email
from tests.ui.conftest import PAGE_ROUTER, ROOT, TIMEOUT, click_entry, new_app_test, page_file, run_entry
from ui.auth_view import SESSION_TOKEN_KEY
from ui.frame import SESSION_USER_KEY, SignedInUser

PASSWORD = "Gate-canary-pw-42"
DATA_PAGES = [
    "pages/chat.py",
    "pages/vibe.py",
    "pages/search.py",
    "pages/prompt_preview.py",
    "pages/analytics.py",
    "pages/privacy.py",
    "pages/account.py",
    "pages/status.py",
    "pages/admin.py",
]
def _widget_keys(at: AppTest) -> set[str]:
    keys: set[str] = set()
    for kind in ("text_input", "button", "selectbox", "multiselect", "slider", "number_input", "chat_input"):
        for w in getattr(at, kind):
            keys.add(w.key or f"{kind}:{w.label}")
    return keys


def assert_sign_in_only(at: AppTest) -> None:
    """The signed-out view (local mode): the title, the way to the sign-in form and to creating an
    account, and nothing else: no widget, no data, no account box. (AppTest sends no form token
    cookie, so the view links to the sign-in page instead of drawing the form itself.)"""
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Advisor"]
    assert _widget_keys(at) == set()
    links = [e.proto.url for e in at.get("link_button")]
    assert len(links) == 1 and links[0].startswith("/signin"), links
    assert any("Create an account" in m.value for m in at.markdown)
    assert not at.dataframe and not at.chat_message and not at.code
    assert not at.sidebar.button  # no account box, no sign-out


def _is_signed_in(at: AppTest) -> bool:
    user = at.session_state.get(SESSION_USER_KEY, None)
    return isinstance(user, SignedInUser) and [t.value for t in at.title] != ["Advisor"]


def _sign_in_link(page: str) -> str:
    """The signed-out view's link for a tab on ``page``: back there after signing in (the start
    page, Chat, is "/")."""
    name = page.removeprefix("pages/").removesuffix(".py")
    return "/signin" if name == "chat" else f"/signin?{urlencode({'next': f'/{name}'})}"


def _token(at: AppTest) -> str:
    token = at.session_state[SESSION_TOKEN_KEY]
    assert isinstance(token, str)
    return token


def test_fresh_visitor_sees_only_sign_in(app) -> None:
    assert_sign_in_only(app(signed_in=False))


def assert_page_refuses(at: AppTest, path: str) -> None:
    """A data page script run on its own without a session shows nothing (defence in depth): only
    "Please sign in."."""
    assert not at.exception, (path, at.exception)
    assert [w.value for w in at.warning] == ["Please sign in."], path
    assert not at.title and not _widget_keys(at) and not at.dataframe and not at.code, path


@pytest.mark.parametrize("how", ["revoked", "user-sessions-revoked", "expired"])
def test_no_session_every_page_shows_only_sign_in(app, how) -> None:
    """The session ends while the tab is open (signed out in another tab, "sign out everywhere" or a
    password change, expiry): the next run of every page shows only the sign-in view (C21, C23)."""
    at = app(admin=True)  # registers every page, the admin page too
    assert _is_signed_in(at)
    for path in DATA_PAGES:
        at.switch_page(page_file(path)).run()
        assert not at.exception, (path, at.exception)
        assert _is_signed_in(at), path
    user = at.session_state[SESSION_USER_KEY]
    if how == "revoked":
        assert sessions.revoke_session(_token(at))
    elif how == "user-sessions-revoked":
        assert sessions.revoke_user_sessions(user.id) == 1
    else:
        with system_session() as s:
            s.execute(update(UserSession).where(col(UserSession.user_id) == user.id)
                      .values(expires_at=utcnow() - timedelta(seconds=1)))
        sessions.clear_validation_cache()  # as another process would see it
    at.switch_page(page_file(DATA_PAGES[1])).run()  # the page router's gate runs first
    assert_sign_in_only(at)
    for path in DATA_PAGES:
        if path == "pages/chat.py":  # the start page: the sign-in view takes its place at "/"
            run_entry(at)
        else:
            at.switch_page(page_file(path)).run()
        assert_sign_in_only(at)
        assert at.get("link_button")[0].proto.url == _sign_in_link(path), path  # returns to this page
    run_entry(at)
    assert_sign_in_only(at)


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


def test_sign_out_revokes_the_session(app) -> None:
    at = app()
    token = _token(at)
    assert sessions.validate_session(token) is not None
    click_entry(at, "sign_out")
    assert_sign_in_only(at)
    assert SESSION_USER_KEY not in at.session_state  # signing out ended access (C21)
    assert sessions.validate_session(token) is None  # the token is refused everywhere (C23)
    for path in ("pages/vibe.py", "pages/privacy.py"):
        at.switch_page(page_file(path)).run()
        assert_sign_in_only(at)
    # the same token again (as the browser's cookie still is until its next page load): refused
    at.session_state[SESSION_TOKEN_KEY] = token
    run_entry(at)
    assert_sign_in_only(at)


def test_a_deleted_account_is_signed_out(app) -> None:
    from core.deletion import delete_user

    at = app()
    user = at.advisor_user
    make_user(is_admin=True)  # not the only admin
    delete_user(user_id=user.id)
    sessions.clear_validation_cache()  # as another process would see it
    run_entry(at)
    assert_sign_in_only(at)


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
