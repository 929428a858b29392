"""core.accounts: local accounts, OIDC identities and sign-in limits, on SQLite and PostgreSQL (C5)."""

from __future__ import annotations

import logging
import threading

import pytest
from argon2 import PasswordHasher
from sqlalchemy import update
from sqlmodel import col, select

from core import accounts, passwords
from core.db import system_session
from core.rate_limits import LimitExceeded, reset_limiter_cache
from core.settings import get_settings
from models import User
from models.schemas import SignInIn, SignUpIn
from tests.factories import random_email

PASSWORD = "Canary-pw-7f3a9c1e"


@pytest.fixture(autouse=True)
def _fresh_limiter():
    reset_limiter_cache()
    yield
    reset_limiter_cache()


def _row(email: str) -> User:
    with system_session() as s:
        user = s.exec(select(User).where(User.email == email)).one()
        return user


def _sign_up(email: str | None = None, password: str = PASSWORD) -> accounts.AuthUser:
    return accounts.sign_up(SignUpIn(email=email or random_email(), password=password))


def test_sign_up_stores_only_an_argon2id_hash(any_db_url: str) -> None:
    email = random_email()
    user = _sign_up(email.upper())
    row = _row(email)
    assert row.id == user.id and row.email == email
    assert row.password_hash is not None and row.password_hash.startswith("$argon2id$")
    assert PASSWORD not in row.password_hash
    assert row.auth_provider == "local"


def test_first_user_is_admin_and_later_ones_are_not(any_db_url: str) -> None:
    first = _sign_up()
    second = _sign_up()
    assert first.is_admin and not second.is_admin


def test_first_admin_is_race_safe(any_db_url: str) -> None:
    results: list[accounts.AuthUser] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        try:
            barrier.wait()
            results.append(_sign_up())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 6
    assert sum(u.is_admin for u in results) == 1
    with system_session() as s:
        assert len(s.exec(select(User).where(User.is_admin)).all()) == 1


def test_duplicate_email_is_refused(any_db_url: str) -> None:
    email = random_email()
    _sign_up(email)
    with pytest.raises(accounts.AuthError) as info:
        _sign_up(email)
    assert info.value.field == "email" and info.value.message == accounts.GENERIC_SIGNUP_ERROR
    assert "exist" not in info.value.message and email not in info.value.message


def test_repeated_refused_sign_ups_are_rate_limited(any_db_url: str) -> None:
    from core.rate_limits import LimitExceeded, reset_limiter_cache

    reset_limiter_cache()
    email = random_email()
    _sign_up(email)
    attempts = get_settings().signin_attempts_per_window
    for _ in range(attempts):
        with pytest.raises(accounts.AuthError):
            accounts.sign_up(SignUpIn(email=email, password=PASSWORD), session_key="probe")
    with pytest.raises(LimitExceeded) as info:
        accounts.sign_up(SignUpIn(email=email, password=PASSWORD), session_key="probe")
    assert "try again in" in info.value.message.lower()
    reset_limiter_cache()


def test_weak_password_is_refused_and_nothing_stored(any_db_url: str) -> None:
    email = random_email()
    with pytest.raises(accounts.PasswordRuleError):
        _sign_up(email, password="alllowercaseletters")
    with system_session() as s:
        assert s.exec(select(User).where(User.email == email)).first() is None


def test_sign_in_ok_and_one_generic_error(any_db_url: str) -> None:
    email = random_email()
    created = _sign_up(email)
    user = accounts.sign_in(SignInIn(email=email, password=PASSWORD), session_key="s1")
    assert user == created
    with pytest.raises(accounts.AuthError) as wrong:
        accounts.sign_in(SignInIn(email=email, password=PASSWORD + "x"), session_key="s1")
    with pytest.raises(accounts.AuthError) as unknown:
        accounts.sign_in(SignInIn(email=random_email(), password=PASSWORD), session_key="s1")
    assert str(wrong.value) == str(unknown.value) == accounts.GENERIC_SIGNIN_ERROR


def test_unknown_email_is_checked_against_a_dummy_hash(any_db_url: str, monkeypatch) -> None:
    calls: list[str] = []
    real = passwords.hasher()

    class Spy:
        def verify(self, hash_: str, password: str) -> bool:
            calls.append(hash_)
            return real.verify(hash_, password)

        def __getattr__(self, name: str):
            return getattr(real, name)

    monkeypatch.setattr(passwords, "_hasher", Spy())
    with pytest.raises(accounts.AuthError):
        accounts.sign_in(SignInIn(email=random_email(), password=PASSWORD), session_key="s")
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_oidc_user_cannot_sign_in_with_a_password(any_db_url: str) -> None:
    email = random_email()
    accounts.user_for_oidc(email=email, subject="sub-1", email_verified=True)
    with pytest.raises(accounts.AuthError, match=accounts.GENERIC_SIGNIN_ERROR):
        accounts.sign_in(SignInIn(email=email, password=PASSWORD), session_key="s")


def test_sign_in_rehashes_outdated_hash(any_db_url: str) -> None:
    email = random_email()
    _sign_up(email)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with system_session() as s:
        s.execute(update(User).where(col(User.email) == email).values(password_hash=weak))
    accounts.sign_in(SignInIn(email=email, password=PASSWORD), session_key="s")
    stored = _row(email).password_hash
    assert stored is not None and stored != weak
    assert not passwords.hasher().check_needs_rehash(stored)
    passwords.hasher().verify(stored, PASSWORD)


def test_failed_sign_ins_lock_per_email(any_db_url: str, set_env) -> None:
    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="3", SIGNIN_WINDOW_S="120")
    email = random_email()
    _sign_up(email)
    for i in range(3):
        with pytest.raises(accounts.AuthError):
            accounts.sign_in(SignInIn(email=email, password="wrong-pass-1"), session_key=f"k{i}")
    # the 4th attempt is refused before the password is looked at, even a correct one
    with pytest.raises(LimitExceeded) as info:
        accounts.sign_in(SignInIn(email=email, password=PASSWORD), session_key="fresh")
    exc = info.value
    assert exc.limit == "signin" and 0 < exc.retry_after_s <= 120
    assert exc.message == f"Too many attempts — try again in {exc.retry_after_s} s"
    # another email from a fresh session is not affected
    other = random_email()
    _sign_up(other)
    accounts.sign_in(SignInIn(email=other, password=PASSWORD), session_key="fresh2")


def test_failed_sign_ins_lock_per_session(any_db_url: str, set_env) -> None:
    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="2")
    emails = [random_email() for _ in range(3)]
    _sign_up(emails[2])
    for email in emails[:2]:
        with pytest.raises(accounts.AuthError):
            accounts.sign_in(SignInIn(email=email, password="wrong-pass-1"), session_key="one-session")
    with pytest.raises(LimitExceeded):
        accounts.sign_in(SignInIn(email=emails[2], password=PASSWORD), session_key="one-session")
    assert accounts.sign_in(SignInIn(email=emails[2], password=PASSWORD), session_key="other").email == emails[2]


def test_success_resets_the_email_counter(any_db_url: str, set_env) -> None:
    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="2")
    email = random_email()
    _sign_up(email)
    with pytest.raises(accounts.AuthError):
        accounts.sign_in(SignInIn(email=email, password="wrong-pass-1"), session_key="a")
    accounts.sign_in(SignInIn(email=email, password=PASSWORD), session_key="b")
    with pytest.raises(accounts.AuthError):
        accounts.sign_in(SignInIn(email=email, password="wrong-pass-1"), session_key="c")
    accounts.sign_in(SignInIn(email=email, password=PASSWORD), session_key="d")


def test_password_never_logged(any_db_url: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    email = random_email()
    _sign_up(email)
    accounts.sign_in(SignInIn(email=email, password=PASSWORD), session_key="s")
    with pytest.raises(accounts.AuthError):
        accounts.sign_in(SignInIn(email=email, password=PASSWORD + "-wrong"), session_key="s")
    with pytest.raises(accounts.PasswordRuleError):
        _sign_up(password="short")
    assert caplog.records, "expected auth log lines"
    assert any("sign-in failed" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
    assert PASSWORD not in caplog.text


# ------------------------------------------------------------------------------------------------
# OIDC
# ------------------------------------------------------------------------------------------------
def test_oidc_creates_then_reuses_the_row(any_db_url: str) -> None:
    email = random_email()
    first = accounts.user_for_oidc(email=email.upper(), subject="sub-123", email_verified=True)
    again = accounts.user_for_oidc(email=email, subject="sub-123", email_verified=True)
    assert first == again
    row = _row(email)
    assert row.auth_provider == "oidc" and row.password_hash is None and row.oidc_subject == "sub-123"
    with system_session() as s:
        assert len(s.exec(select(User).where(User.email == email)).all()) == 1


def test_oidc_rejects_unverified_email_and_stores_nothing(any_db_url: str) -> None:
    email = random_email()
    with pytest.raises(accounts.AuthError, match="not verified"):
        accounts.user_for_oidc(email=email, subject="sub-9", email_verified=False)
    with system_session() as s:
        assert s.exec(select(User).where(User.email == email)).first() is None


def test_oidc_subject_mismatch_and_local_account(any_db_url: str) -> None:
    email = random_email()
    accounts.user_for_oidc(email=email, subject="sub-a", email_verified=True)
    with pytest.raises(accounts.AuthError, match="different identity"):
        accounts.user_for_oidc(email=email, subject="sub-b", email_verified=True)
    local = random_email()
    _sign_up(local)
    with pytest.raises(accounts.AuthError, match="password account"):
        accounts.user_for_oidc(email=local, subject="sub-c", email_verified=True)


def test_oidc_email_changed_at_the_provider_keeps_the_account(any_db_url: str) -> None:
    """The subject is the stable id: a new verified email is the same account (it used to create a
    second, empty one); an email that another account holds is refused."""
    old, new = random_email(), random_email()
    first = accounts.user_for_oidc(email=old, subject="sub-moves", email_verified=True)
    moved = accounts.user_for_oidc(email=new, subject="sub-moves", email_verified=True)
    assert moved.id == first.id and moved.email == new
    with system_session() as s:
        assert s.exec(select(User).where(User.email == old)).first() is None
        assert len(s.exec(select(User).where(User.oidc_subject == "sub-moves")).all()) == 1
    taken = random_email()
    accounts.user_for_oidc(email=taken, subject="sub-other", email_verified=True)
    with pytest.raises(accounts.AuthError, match="another account"):
        accounts.user_for_oidc(email=taken, subject="sub-moves", email_verified=True)
    assert _row(new).oidc_subject == "sub-moves"
