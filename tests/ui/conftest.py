"""AppTest helpers shared by the page tests.

``app(page=None, *, user=None, admin=False, signed_in=True)`` builds an ``AppTest`` of the page
router ``ui/page_router.py`` (the script ``streamlit_app.py`` serves: boot, gate, navigation) on the
test's migrated database (SQLite by default; request ``pg_url`` first for PostgreSQL), creates a user
row and signs it in through a real session (``sign_in_directly``: a token from ``core.sessions``
where the gate looks for the browser's cookie; AppTest has no cookies), runs the app, and switches to
``page`` ("pages/vibe.py", relative to the repository) when given. Every run goes through the
page router, as in a browser; ``run_entry`` runs it on the default page. The signed-in user is
``at.advisor_user``.

``AppTest.switch_page`` reads a path relative to the router's folder (``ui/``); pass it
``page_file("pages/vibe.py")``, the page's absolute path.

    def test_my_page(app):
        at = app("pages/analytics.py")
        assert not at.exception
        user = at.advisor_user          # SignedInUser(id, email, is_admin)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core import db as core_db
from core.rate_limits import reset_limiter_cache
from core.sessions import create_session
from core.settings import get_settings
from tests.factories import make_user, random_email
from ui.auth_view import SESSION_TOKEN_KEY
from ui.frame import SESSION_USER_KEY, SignedInUser

ROOT = Path(__file__).resolve().parents[2]
PAGE_ROUTER = ROOT / "ui" / "page_router.py"
TIMEOUT = 60.0

AppFactory = Callable[..., Any]


def new_app_test() -> AppTest:
    """A fresh AppTest of the page router (nothing run yet)."""
    return AppTest.from_file(str(PAGE_ROUTER), default_timeout=TIMEOUT)


def page_file(path: str) -> str:
    """The absolute path of a page (``"pages/vibe.py"``), as ``AppTest.switch_page`` needs it."""
    return str(ROOT / path)


def run_entry(at: AppTest) -> AppTest:
    """Run the page router (gate, sidebar, navigation) on its default page, as opening the app's
    root URL does: the page asked for by the last ``switch_page`` (or shown last) is forgotten.
    """
    at._page_hash = ""
    at._finished_page_script_hash = ""
    return at.run()


def click_entry(at: AppTest, key: str) -> AppTest:
    """Click a widget the page router renders (e.g. the sidebar's ``sign_out``) and run the router."""
    if not any(b.key == key for b in at.button):
        run_entry(at)
    at.button(key=key).click()
    return run_entry(at)


def sign_in_directly(at: AppTest, user: SignedInUser) -> str:
    """Sign ``user`` in through a real session (``core.sessions``): its token where the gate finds
    the browser's cookie token (AppTest sends no cookies), and ``user`` where pages find it (a page
    run on its own, without the gate). Returns the token."""
    token = create_session(user.id, user_agent="AppTest").token
    at.session_state[SESSION_TOKEN_KEY] = token
    at.session_state[SESSION_USER_KEY] = user
    return token


def create_signed_in_user(*, email: str | None = None, admin: bool = False) -> SignedInUser:
    address = email or random_email()
    user_id = make_user(email=address, is_admin=admin)
    return SignedInUser(id=user_id, email=address, is_admin=admin)


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Iterator[AppFactory]:
    """Factory of signed-in (or not) AppTests on a migrated database; see the module docstring."""
    monkeypatch.chdir(ROOT)
    core_db.migrate(get_settings().database_url)
    reset_limiter_cache()

    def _make(
        page: str | None = None,
        *,
        user: SignedInUser | None = None,
        admin: bool = False,
        signed_in: bool = True,
    ) -> AppTest:
        at = new_app_test()
        if signed_in:
            user = user or create_signed_in_user(admin=admin)
            sign_in_directly(at, user)
        at.run()
        if page is not None:
            at.switch_page(page_file(page)).run()
        at.advisor_user = user  # type: ignore[attr-defined]
        return at

    yield _make
    reset_limiter_cache()
