"""core.admin: admin actions need an admin; grants and quota overrides, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlmodel import select

from core.accounts import AuthError
from core.admin import NotAllowed, grant_admin, list_users, set_quota_override
from core.db import NotFound, system_session
from models import User
from models.schemas import QuotaOverrideIn
from tests.factories import make_user, random_email


def _row(email: str) -> User:
    with system_session() as s:
        user = s.exec(select(User).where(User.email == email)).one()
        return user


def test_admin_actions_need_an_admin(any_db_url: str) -> None:
    admin = make_user(is_admin=True)
    member_email = random_email()
    member = make_user(email=member_email)
    with pytest.raises(NotAllowed):
        list_users(acting_user_id=member)
    with pytest.raises(NotAllowed):
        grant_admin(acting_user_id=member, target_email=member_email)
    with pytest.raises(NotAllowed):
        set_quota_override(acting_user_id=member, data=QuotaOverrideIn(user_id=member, tokens_per_day=1))
    with pytest.raises(NotAllowed):
        list_users(acting_user_id=uuid.uuid4())
    assert not _row(member_email).is_admin

    users = list_users(acting_user_id=admin)
    assert {u.id for u in users} == {admin, member}
    assert all(not hasattr(u, "password_hash") for u in users)

    granted = grant_admin(acting_user_id=admin, target_email=member_email.upper())
    assert granted.is_admin and _row(member_email).is_admin
    with pytest.raises(NotFound):
        grant_admin(acting_user_id=admin, target_email=random_email())
    # a pasted address with an invisible character: a clear message, not an unexpected error
    with pytest.raises(AuthError, match="U\\+200E"):
        grant_admin(acting_user_id=admin, target_email="\u200e" + member_email)


def test_quota_override_set_and_clear(any_db_url: str) -> None:
    admin = make_user(is_admin=True)
    email = random_email()
    member = make_user(email=email)
    set_quota_override(
        acting_user_id=admin,
        data=QuotaOverrideIn(user_id=member, tokens_per_day=1234, cost_per_month_usd=Decimal("7.5")),
    )
    row = _row(email)
    assert row.quota_tokens_per_day == 1234 and Decimal(row.quota_cost_per_month_usd or 0) == Decimal("7.5")
    listed = {u.id: u for u in list_users(acting_user_id=admin)}
    assert listed[member].quota_tokens_per_day == 1234
    set_quota_override(acting_user_id=admin, data=QuotaOverrideIn(user_id=member))
    row = _row(email)
    assert row.quota_tokens_per_day is None and row.quota_cost_per_month_usd is None
    with pytest.raises(NotFound):
        set_quota_override(acting_user_id=admin, data=QuotaOverrideIn(user_id=uuid.uuid4()))
