"""GDPR deletion (C18) on SQLite and PostgreSQL: checked by a scan of every column of every table
for the user's id, and by the deletion record, which holds no personal data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest

from core import rate_limits
from core.accounts import AuthError, get_user, sign_in
from core.db import NotFound
from core.deletion import LastAdmin, delete_user, subject_hash
from core.export import export_user_data
from core.settings import get_settings
from models.schemas import SignInIn
from tests.db.user_data import (
    PASSWORD,
    all_deletion_records,
    counts_for,
    db_rows,
    rows_holding,
    seed_two_users,
    snapshot,
    unzip,
)
from tests.factories import make_user


@pytest.fixture
def two_users(any_db_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    return seed_two_users()


def test_delete_user_leaves_no_row_with_the_id_and_keeps_others(two_users):
    a, b = two_users
    email = db_rows("users", a)[0]["email"]
    a_counts = counts_for(a)
    assert rows_holding(a)  # the scan finds the id before
    b_before = snapshot(b)
    records_before = all_deletion_records()

    replaced = [r for r in db_rows("agent_runs", a) if r["superseded_by"] is not None]
    assert replaced  # the catalogue's runs include an earlier version of a turn

    receipt = delete_user(user_id=a)

    assert rows_holding(a) == {}
    for run in replaced:  # neither version is left
        assert rows_holding(run["id"]) == {} and rows_holding(run["superseded_by"]) == {}
    assert snapshot(b) == b_before
    assert receipt.row_counts == a_counts
    assert receipt.limits_cleared
    records = all_deletion_records()
    assert len(records) == len(records_before) + 1
    (record,) = [r for r in records if r["id"] == receipt.record_id]
    key = get_settings().deletion_salt.get_secret_value().encode()
    assert record["subject_hash"] == hmac.new(key, str(a).encode(), hashlib.sha256).hexdigest()
    assert record["subject_hash"] == subject_hash(a) == receipt.subject_hash
    assert record["row_counts"] == a_counts
    dumped = json.dumps(record, default=str)
    for needle in (email, email.split("@")[0], "alphamark", "message", str(a), a.hex):
        assert needle not in dumped


def test_deleted_user_can_no_longer_sign_in(two_users):
    a, _ = two_users
    email = db_rows("users", a)[0]["email"]
    assert sign_in(SignInIn(email=email, password=PASSWORD), session_key="s1").id == a
    delete_user(user_id=a)
    with pytest.raises(AuthError):
        sign_in(SignInIn(email=email, password=PASSWORD), session_key="s2")
    assert get_user(a) is None


def test_delete_clears_the_users_rate_limit_keys(two_users):
    a, _ = two_users
    email = db_rows("users", a)[0]["email"]
    rate_limits.reset_limiter_cache()
    for i in range(get_settings().signin_attempts_per_window):
        rate_limits.take_signin_attempt(email=email, session_key=f"k{i}")
    with pytest.raises(rate_limits.LimitExceeded):
        rate_limits.take_signin_attempt(email=email, session_key="fresh")
    delete_user(user_id=a)
    rate_limits.take_signin_attempt(email=email, session_key="fresh")
    rate_limits.reset_limiter_cache()


def test_a_failure_in_the_middle_rolls_everything_back(two_users):
    a, b = two_users
    before_a, before_b = snapshot(a), snapshot(b)
    records_before = all_deletion_records()
    deleted: list[str] = []

    def fail_after_first(table: str, rows: int) -> None:
        deleted.append(table)
        assert rows > 0
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        delete_user(user_id=a, on_table_deleted=fail_after_first)
    assert deleted == ["agent_runs"]  # children first
    assert snapshot(a) == before_a
    assert snapshot(b) == before_b
    assert all_deletion_records() == records_before
    assert unzip(export_user_data(user_id=a))  # still all there


def test_deleting_an_unknown_or_deleted_user_is_refused(two_users):
    a, _ = two_users
    delete_user(user_id=a)
    records = all_deletion_records()
    with pytest.raises(NotFound):
        delete_user(user_id=a)
    with pytest.raises(NotFound):
        delete_user(user_id=uuid.uuid4())
    assert all_deletion_records() == records


def test_the_only_admin_cannot_leave_others_without_an_admin(any_db_url: str):
    """Deleting the only admin while other accounts exist is refused (nothing deleted): nobody could
    ever be made admin again. With a second admin, or as the only account, it goes through."""
    admin, member = make_user(is_admin=True), make_user()
    before = counts_for(admin)
    with pytest.raises(LastAdmin):
        delete_user(user_id=admin)
    assert counts_for(admin) == before  # nothing deleted
    delete_user(user_id=member)  # a member may always leave
    delete_user(user_id=admin)  # the only account left: nothing to keep an admin for
    assert not rows_holding(admin)

    first, second = make_user(is_admin=True), make_user(is_admin=True)
    other = make_user()
    delete_user(user_id=first)  # another admin remains
    with pytest.raises(LastAdmin):
        delete_user(user_id=second)
    assert rows_holding(second) and rows_holding(other)
