"""An admin's forced password reset (core.admin, core.reset_codes, core.credentials), on SQLite and
PostgreSQL: admins only; the password stops working and every session ends; the one-time code
(only its hash stored) signs in once, before it expires; a new password then comes first."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import col, select

from core import accounts, credentials, reset_codes
from core.admin import NotAllowed, force_password_reset, list_users
from core.db import NotFound, system_session
from core.rate_limits import reset_limiter_cache
from core.sessions import clear_validation_cache, create_session, token_hash, validate_session
from models import PasswordReset, User
from models.schemas import NewPasswordIn, SignInIn, SignUpIn
from tests.factories import make_user, random_email

PASSWORD = "Reset-canary-pw-4d2e"
NEW_PASSWORD = "Reset-new-pw-9c1b"


@pytest.fixture(autouse=True)
def _fresh() -> None:
    reset_limiter_cache()
    clear_validation_cache()


def _sign_in(email: str, password: str) -> accounts.AuthUser:
    return accounts.sign_in(SignInIn(email=email, password=password), session_key=uuid.uuid4().hex)


def _member() -> accounts.AuthUser:
    return accounts.sign_up(SignUpIn(email=random_email(), password=PASSWORD))


def _twice(password: str) -> NewPasswordIn:
    return NewPasswordIn(new_password=password, confirm_password=password)


def _codes(user_id: uuid.UUID) -> list[PasswordReset]:
    with system_session() as s:
        return list(s.exec(select(PasswordReset).where(col(PasswordReset.user_id) == user_id)).all())


def _flag(user_id: uuid.UUID) -> bool:
    with system_session() as s:
        return bool(s.exec(select(User.password_reset_required).where(col(User.id) == user_id)).one())


def test_only_an_admin_forces_a_reset(any_db_url: str) -> None:
    admin = make_user(is_admin=True)
    member, other = _member(), _member()
    with pytest.raises(NotAllowed):
        force_password_reset(acting_user_id=other.id, target_user_id=member.id)
    with pytest.raises(accounts.AuthError, match="Account page"):
        force_password_reset(acting_user_id=admin, target_user_id=admin)
    with pytest.raises(NotFound):
        force_password_reset(acting_user_id=admin, target_user_id=uuid.uuid4())
    oidc = accounts.user_for_oidc(email=random_email(), subject="sub-r", email_verified=True)
    with pytest.raises(accounts.AuthError, match="identity provider"):
        force_password_reset(acting_user_id=admin, target_user_id=oidc.id)
    assert not _flag(member.id) and _codes(member.id) == []
    assert _sign_in(member.email, PASSWORD).id == member.id


def test_a_forced_reset_ends_sessions_and_the_code_signs_in_once(any_db_url: str) -> None:
    admin = make_user(is_admin=True)
    member = _member()
    sessions = [create_session(member.id) for _ in range(2)]
    issued = force_password_reset(acting_user_id=admin, target_user_id=member.id)
    # only the hash is stored; every session ended; the password no longer signs in
    [row] = _codes(member.id)
    assert row.code_hash == reset_codes.code_hash(issued.code) and issued.code not in row.code_hash
    assert all(validate_session(s.token) is None for s in sessions)
    assert _flag(member.id) and issued.email == member.email
    assert {u.id: u.password_reset_required for u in list_users(acting_user_id=admin)}[member.id]
    with pytest.raises(accounts.AuthError, match=accounts.GENERIC_SIGNIN_ERROR):
        _sign_in(member.email, PASSWORD)
    # the code, typed loosely (lower case, spaces), signs in once; the account must set a password
    signed_in = _sign_in(member.email, issued.code.lower().replace("-", " "))
    assert signed_in.id == member.id and signed_in.password_reset_required
    assert _codes(member.id) == []
    with pytest.raises(accounts.AuthError):
        _sign_in(member.email, issued.code)
    assert accounts.get_user(member.id) == signed_in  # the gate sees the pending reset on every run


def test_setting_the_new_password_finishes_the_reset(any_db_url: str) -> None:
    admin = make_user(is_admin=True)
    member = _member()
    issued = force_password_reset(acting_user_id=admin, target_user_id=member.id)
    _sign_in(member.email, issued.code)
    here, stale = create_session(member.id), create_session(member.id)
    with pytest.raises(accounts.PasswordRuleError) as weak:
        credentials.set_new_password(user_id=member.id, data=_twice("short"))
    assert weak.value.field == "new_password" and _flag(member.id)
    ended = credentials.set_new_password(
        user_id=member.id, data=NewPasswordIn(new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD),
        keep_token_hash=token_hash(here.token),
    )
    assert ended == 1 and validate_session(here.token) is not None and validate_session(stale.token) is None
    assert not _flag(member.id) and _codes(member.id) == []
    assert _sign_in(member.email, NEW_PASSWORD).password_reset_required is False
    with pytest.raises(accounts.AuthError):
        _sign_in(member.email, PASSWORD)
    with pytest.raises(accounts.AuthError, match="no password reset to finish"):  # only once, only when pending
        credentials.set_new_password(user_id=member.id, data=_twice(PASSWORD))


def test_a_new_code_replaces_the_old_and_codes_expire(any_db_url: str) -> None:
    admin = make_user(is_admin=True)
    member = _member()
    first = force_password_reset(acting_user_id=admin, target_user_id=member.id)
    second = force_password_reset(acting_user_id=admin, target_user_id=member.id)
    assert first.code != second.code and len(_codes(member.id)) == 1
    with pytest.raises(accounts.AuthError):
        _sign_in(member.email, first.code)
    with system_session() as s:  # the code's day has passed
        row = s.exec(select(PasswordReset).where(col(PasswordReset.user_id) == member.id)).one()
        row.expires_at = row.created_at - timedelta(seconds=1)
        s.add(row)
    with pytest.raises(accounts.AuthError):
        _sign_in(member.email, second.code)
    assert _codes(member.id) == []  # the expired code was dropped
    assert _flag(member.id)  # and the reset is still pending: another code is needed


def test_codes_are_80_random_bits_in_a_forgiving_alphabet(any_db_url: str) -> None:
    codes = {reset_codes._new_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        groups = code.split("-")
        assert [len(g) for g in groups] == [4, 4, 4, 4]
        assert set("".join(groups)) <= set(reset_codes.ALPHABET)
    assert reset_codes.code_hash("ABCD-EFGH-1JK0-MNPQ") == reset_codes.code_hash(" abcd efgh ijko mnpq ")
    assert reset_codes.code_hash("ABCD-EFGH-1JK0-MNPQ") != reset_codes.code_hash("ABCD-EFGH-1JK0-MNPR")
