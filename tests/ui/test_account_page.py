"""The account page (change your password, the current one required; sign out everywhere), the
admin's forced reset (the code shown once) and the one view of an account whose reset is pending."""

from __future__ import annotations

import pytest
from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from core import accounts
from core.admin import force_password_reset
from core.db import system_session
from core.sessions import clear_validation_cache, create_session, validate_session
from models import User
from models.schemas import SignInIn, SignUpIn
from tests.factories import random_email
from tests.ui.conftest import AppFactory, new_app_test, page_file, sign_in_directly
from ui.frame import SESSION_USER_KEY, SignedInUser

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



def test_sign_out_everywhere_ends_every_session_and_this_one(app: AppFactory) -> None:
    app(signed_in=False)
    user = _local_user()
    clear_validation_cache()
    others = [create_session(user.id) for _ in range(2)]
    at = app(PAGE, user=user)
    at.button(key="sign_out_everywhere").click().run()
    assert not at.exception
    assert SESSION_USER_KEY not in at.session_state
    assert [t.value for t in at.title] == ["Advisor"]  # the sign-in view
    assert all(validate_session(s.token) is None for s in others)


def test_a_forced_reset_shows_only_set_a_new_password_until_it_is_set(app: AppFactory) -> None:
    admin_at = app("pages/admin.py", admin=True)
    member = _local_user()
    issued = force_password_reset(acting_user_id=admin_at.advisor_user.id, target_user_id=member.id)
    signed_in = accounts.sign_in(SignInIn(email=member.email, password=issued.code), session_key="k")
    assert signed_in.password_reset_required
    at = new_app_test()
    sign_in_directly(at, SignedInUser(id=member.id, email=member.email, is_admin=False, password_reset_required=True))
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Set a new password"]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(page_file("pages/chat.py"))
    for new, confirm, shown in (
        ("short1A", "short1A", "Use at least"),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "The two passwords differ"),
    ):
        at.text_input(key="new_password").input(new)
        at.text_input(key="confirm_password").input(confirm)
        at.button(key="FormSubmitter:new_password_form-Set password").click().run()
        assert len(at.error) == 1 and shown in at.error[0].value, [e.value for e in at.error]
        assert [t.value for t in at.title] == ["Set a new password"]
    at.text_input(key="new_password").input(NEW_PASSWORD)
    at.text_input(key="confirm_password").input(NEW_PASSWORD)
    at.button(key="FormSubmitter:new_password_form-Set password").click().run()
    assert not at.exception and not at.error
    assert [t.value for t in at.title] == ["Chat"]  # every page is open again
    assert accounts.sign_in(SignInIn(email=member.email, password=NEW_PASSWORD), session_key="k2").id == member.id


def test_an_admin_sees_the_one_time_code_once(app: AppFactory) -> None:
    at = app("pages/admin.py", admin=True)
    member = _local_user()
    at.run()
    at.selectbox(key="reset_user").set_value(member.email).run()
    at.button(key="force_reset").click().run()
    assert not at.exception and not at.error
    [code] = [c.value for c in at.code]
    assert accounts.sign_in(SignInIn(email=member.email, password=code), session_key="k").password_reset_required
    (table,) = at.dataframe
    assert dict(zip(table.value["email"], table.value["reset pending"], strict=True))[member.email]
    at.run()  # shown once: the next run no longer holds it
    assert not at.code
    with system_session() as s:
        assert s.exec(select(User.password_reset_required).where(col(User.id) == member.id)).one()
