"""core.credentials and Unicode passwords, on SQLite and PostgreSQL (C5, C23): changing a password
needs the current one, stores a fresh argon2id hash and ends the user's other sessions; "sign out
everywhere" ends them all; a password typed in NFD signs in to an account whose password was
created in NFC; hashes stored before normalisation keep working."""

from __future__ import annotations

import logging
import unicodedata
import uuid

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from core import accounts, credentials, passwords
from core.db import system_session
from core.rate_limits import LimitExceeded, reset_limiter_cache
from core.sessions import clear_validation_cache, create_session, token_hash, validate_session
from models import User
from models.schemas import ChangePasswordIn, SignInIn, SignUpIn
from tests.factories import make_user, random_email

PASSWORD = "Old-canary-pw-5e1d"
NEW_PASSWORD = "New-canary-pw-8b2c"
NFC = unicodedata.normalize("NFC", "Crème brûlée à 9 heures")
NFD = unicodedata.normalize("NFD", NFC)


@pytest.fixture(autouse=True)
def _fresh_limiter():
    reset_limiter_cache()
    yield
    reset_limiter_cache()


def _stored_hash(user_id: uuid.UUID) -> str | None:
    with system_session() as s:
        return s.exec(select(User.password_hash).where(col(User.id) == user_id)).one()


def _sign_in(email: str, password: str) -> accounts.AuthUser:
    return accounts.sign_in(SignInIn(email=email, password=password), session_key=uuid.uuid4().hex)


def _change(user_id: uuid.UUID, current: str, new: str, confirm: str | None = None) -> None:
    credentials.change_password(
        user_id=user_id,
        data=ChangePasswordIn(current_password=current, new_password=new, confirm_password=confirm or new),
    )


def test_a_password_created_in_nfc_signs_in_when_typed_in_nfd(any_db_url: str) -> None:
    assert NFC != NFD
    email = random_email()
    user = accounts.sign_up(SignUpIn(email=email, password=NFC))
    assert _sign_in(email, NFD).id == user.id
    assert _sign_in(email, NFC).id == user.id
    with pytest.raises(accounts.AuthError):
        _sign_in(email, NFC.replace("9", "8"))


def test_a_hash_stored_before_normalisation_signs_in_and_is_rehashed(any_db_url: str) -> None:
    email = random_email()
    user = accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    legacy = passwords.hasher().hash(NFD)  # as an account stored it before: the NFD form as typed
    with system_session() as s:
        s.execute(update(User).where(col(User.id) == user.id).values(password_hash=legacy))
    assert _sign_in(email, NFD).id == user.id
    stored = _stored_hash(user.id)
    assert stored is not None and stored != legacy
    assert passwords.hasher().verify(stored, passwords.normalise_password(NFD))
    assert _sign_in(email, NFC).id == user.id  # now either form signs in


def test_change_password_needs_the_current_one_and_stores_a_new_argon2id_hash(any_db_url: str) -> None:
    email = random_email()
    user = accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    before = _stored_hash(user.id)
    with pytest.raises(accounts.AuthError) as wrong:
        _change(user.id, PASSWORD + "x", NEW_PASSWORD)
    assert wrong.value.field == "current_password" and wrong.value.message == credentials.CURRENT_PASSWORD_WRONG
    assert _stored_hash(user.id) == before
    _change(user.id, PASSWORD, NEW_PASSWORD)
    after = _stored_hash(user.id)
    assert after is not None and after != before and after.startswith("$argon2id$")
    assert NEW_PASSWORD not in after and not passwords.hasher().check_needs_rehash(after)
    assert _sign_in(email, NEW_PASSWORD).id == user.id
    with pytest.raises(accounts.AuthError, match=accounts.GENERIC_SIGNIN_ERROR):
        _sign_in(email, PASSWORD)


def test_the_new_password_follows_the_rules(any_db_url: str) -> None:
    email = random_email()
    user = accounts.sign_up(SignUpIn(email=email, password=PASSWORD))
    before = _stored_hash(user.id)
    for weak in ("short1A", "alllowercaseletters", email):
        with pytest.raises(accounts.PasswordRuleError) as info:
            _change(user.id, PASSWORD, weak)
        assert info.value.field == "new_password"
    assert _stored_hash(user.id) == before


def test_the_current_password_may_be_typed_in_another_unicode_form(any_db_url: str) -> None:
    email = random_email()
    user = accounts.sign_up(SignUpIn(email=email, password=NFC))
    _change(user.id, NFD, NEW_PASSWORD)
    assert _sign_in(email, NEW_PASSWORD).id == user.id


def test_wrong_current_passwords_are_rate_limited(any_db_url: str, set_env) -> None:
    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="3")
    user = accounts.sign_up(SignUpIn(email=random_email(), password=PASSWORD))
    for _ in range(3):
        with pytest.raises(accounts.AuthError):
            _change(user.id, "wrong-guess-1", NEW_PASSWORD)
    with pytest.raises(LimitExceeded):  # even the right one, until the window passes
        _change(user.id, PASSWORD, NEW_PASSWORD)


def test_an_account_without_a_password_cannot_change_one(any_db_url: str) -> None:
    oidc = accounts.user_for_oidc(email=random_email(), subject="sub-x", email_verified=True)
    with pytest.raises(accounts.AuthError, match="identity provider"):
        _change(oidc.id, PASSWORD, NEW_PASSWORD)
    with pytest.raises(accounts.AuthError, match="identity provider"):
        _change(uuid.uuid4(), PASSWORD, NEW_PASSWORD)


def test_passwords_are_never_logged(any_db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    user = accounts.sign_up(SignUpIn(email=random_email(), password=PASSWORD))
    with pytest.raises(accounts.AuthError):
        _change(user.id, NEW_PASSWORD, PASSWORD)
    _change(user.id, PASSWORD, NEW_PASSWORD)
    assert any("password changed" in r.getMessage() for r in caplog.records)
    assert PASSWORD not in caplog.text and NEW_PASSWORD not in caplog.text


# ------------------------------------------------------------------------------------------------
# sessions: a password change ends the user's OTHER sessions; "sign out everywhere" ends them all
# ------------------------------------------------------------------------------------------------
def test_a_password_change_revokes_the_other_sessions_and_keeps_this_one(any_db_url: str) -> None:
    clear_validation_cache()
    user = accounts.sign_up(SignUpIn(email=random_email(), password=PASSWORD))
    other_user = accounts.sign_up(SignUpIn(email=random_email(), password=PASSWORD))
    this, laptop, phone = (create_session(user.id) for _ in range(3))
    bystander = create_session(other_user.id)
    assert all(validate_session(s.token) for s in (this, laptop, phone, bystander))
    with pytest.raises(accounts.AuthError):  # a refused change ends nothing
        _change_keeping(user.id, PASSWORD + "x", NEW_PASSWORD, this.token)
    assert validate_session(laptop.token) is not None
    assert _change_keeping(user.id, PASSWORD, NEW_PASSWORD, this.token) == 2
    assert validate_session(this.token) is not None
    assert validate_session(laptop.token) is None and validate_session(phone.token) is None
    assert validate_session(bystander.token) is not None


def test_sign_out_everywhere_revokes_every_session_of_the_user(any_db_url: str) -> None:
    clear_validation_cache()
    user, other = make_user(), make_user()
    mine = [create_session(user) for _ in range(3)]
    theirs = create_session(other)
    assert credentials.sign_out_everywhere(user_id=user) == 3
    assert all(validate_session(s.token) is None for s in mine)
    assert validate_session(theirs.token) is not None
    assert credentials.sign_out_everywhere(user_id=user) == 0


def _change_keeping(user_id: uuid.UUID, current: str, new: str, token: str) -> int:
    return credentials.change_password(
        user_id=user_id,
        data=ChangePasswordIn(current_password=current, new_password=new, confirm_password=new),
        keep_token_hash=token_hash(token),
    )
