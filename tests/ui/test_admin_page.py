"""The admin page: admins only (checked in the page too), users list, grant admin, quota overrides."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from core.db import system_session
from models import User
from tests.factories import make_user, random_email
from tests.ui.conftest import ROOT, TIMEOUT, create_signed_in_user, page_file, sign_in_directly

PAGE = "pages/admin.py"


def _user(email: str) -> User:
    with system_session() as s:
        return s.exec(select(User).where(User.email == email)).one()


def test_member_has_no_admin_page(app) -> None:
    at = app()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(page_file(PAGE))


def test_page_checks_admin_again(app) -> None:
    from streamlit.testing.v1 import AppTest

    app(signed_in=False)  # migrate
    member = create_signed_in_user()
    forged = type(member)(id=member.id, email=member.email, is_admin=True)  # stale/forged session flag
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=TIMEOUT)
    sign_in_directly(at, forged)
    at.run()
    assert [e.value for e in at.error] == ["Only admins can see this page."]
    assert not at.dataframe and not at.text_input


def test_admin_lists_grants_and_sets_quotas(app) -> None:
    member_email = random_email()
    make_user(email=member_email)
    at = app(PAGE, admin=True)
    assert not at.exception
    (table,) = at.dataframe
    emails = set(table.value["email"])
    assert emails == {member_email, at.advisor_user.email}
    assert "user_message" not in table.value.columns and "password_hash" not in table.value.columns

    at.text_input(key="grant_email").input(member_email.upper())
    at.button(key="FormSubmitter:grant_admin_form-Grant admin").click().run()
    assert [s.value for s in at.success] == [f"{member_email} is now an admin."]
    assert _user(member_email).is_admin
    (table,) = at.dataframe  # the table shows the change in the same interaction
    assert dict(zip(table.value["email"], table.value["admin"], strict=True))[member_email]
    at.text_input(key="grant_email").input(random_email())
    at.button(key="FormSubmitter:grant_admin_form-Grant admin").click().run()
    assert [e.value for e in at.error] == ["No user with that email."]

    at.selectbox(key="quota_user").set_value(member_email).run()
    member_id = _user(member_email).id
    at.number_input(key=f"quota_tokens_{member_id}").set_value(1234)
    at.number_input(key=f"quota_cost_{member_id}").set_value(7.5)
    at.button(key="FormSubmitter:quota_form-Save overrides").click().run()
    assert not at.error
    row = _user(member_email)
    assert row.quota_tokens_per_day == 1234 and row.quota_cost_per_month_usd == Decimal("7.5")
    assert [s.value for s in at.success] == [f"Quota overrides saved for {member_email}."]
    (table,) = at.dataframe
    shown = table.value.set_index("email")
    assert shown.loc[member_email, "tokens/day"] == 1234 and shown.loc[member_email, "USD/month"] == 7.5


def test_revoked_admin_loses_the_page(app) -> None:
    at = app(PAGE, admin=True)
    assert at.dataframe
    with system_session() as s:
        s.execute(update(User).where(User.id == at.advisor_user.id).values(is_admin=False))
    at.run()  # the page router's gate reads the account again: the admin page is gone
    assert not at.exception and not at.dataframe and "Admin" not in [t.value for t in at.title]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(page_file(PAGE))


def test_switching_user_in_the_quota_form_shows_their_own_quota(app) -> None:
    """The form's inputs belong to the chosen user: choosing B after A shows B's (empty) quotas, and
    saving unedited leaves B as it was (it used to show A's values and write them onto B)."""
    a_email, b_email = random_email(), random_email()
    make_user(email=a_email)
    make_user(email=b_email)
    with system_session() as s:
        s.execute(update(User).where(col(User.email) == a_email).values(quota_tokens_per_day=1000,
                                                                      quota_cost_per_month_usd=Decimal("3")))
    at = app(PAGE, admin=True)
    at.selectbox(key="quota_user").set_value(a_email).run()
    assert [n.value for n in at.number_input] == [1000, 3.0]
    at.selectbox(key="quota_user").set_value(b_email).run()
    assert [n.value for n in at.number_input] == [None, None]
    at.button(key="FormSubmitter:quota_form-Save overrides").click().run()
    with system_session() as s:
        b = s.exec(select(User).where(User.email == b_email)).one()
    assert (b.quota_tokens_per_day, b.quota_cost_per_month_usd) == (None, None)
