"""The account page: change your password (the current one required), messages beside the fields."""

from __future__ import annotations

from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from core import accounts
from core.db import system_session
from models import User
from models.schemas import SignInIn, SignUpIn
from tests.factories import random_email
from tests.ui.conftest import AppFactory
from ui.frame import SignedInUser

PAGE = "pages/account.py"
PASSWORD = "Account-canary-pw-31"
NEW_PASSWORD = "Account-new-pw-77"
SUBMIT = "FormSubmitter:change_password_form-Change password"


def _local_user() -> SignedInUser:
    email = random_email()
    created = accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    return SignedInUser(id=created.id, email=created.email, is_admin=created.is_admin)


def _submit(at: AppTest, current: str, new: str, confirm: str) -> AppTest:
    at.text_input(key="current_password").input(current)
    at.text_input(key="new_password").input(new)
    at.text_input(key="confirm_password").input(confirm)
    return at.button(key=SUBMIT).click().run()


def _hash(user: SignedInUser) -> str | None:
    with system_session() as s:
        return s.exec(select(User.password_hash).where(col(User.id) == user.id)).one()


def test_change_password_on_the_account_page(app: AppFactory) -> None:
    app(signed_in=False)  # migrates
    user = _local_user()
    at = app(PAGE, user=user)
    assert not at.exception
    assert [t.value for t in at.title] == ["Account"]
    before = _hash(user)

    _submit(at, "not-my-password-1", NEW_PASSWORD, NEW_PASSWORD)
    assert [e.value for e in at.error] == ["Your current password is not correct."]
    _submit(at, PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x")
    assert [e.value for e in at.error] == ["The two passwords differ: type the same password twice."]
    _submit(at, PASSWORD, "lowercaseonlyletters", "lowercaseonlyletters")
    assert len(at.error) == 1 and "Mix at least two kinds" in at.error[0].value
    assert _hash(user) == before

    _submit(at, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    assert not at.error and not at.exception
    assert [s.value for s in at.success] == ["Your password was changed."]
    assert _hash(user) != before
    assert accounts.sign_in(SignInIn(email=user.email, password=NEW_PASSWORD), session_key="k").id == user.id

