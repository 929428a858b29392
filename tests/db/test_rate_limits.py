"""Rate limits (C5, C7) against memory:// and the real Redis; Redis keys expire and hold no content
(C20); sign-ups limited per client address."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import update
from sqlmodel import select

from core import rate_limits
from core.quotas import check_turn_allowed, usage_summary
from core.rate_limits import LimitExceeded, reset_limiter_cache
from tests.conftest import REDIS_URL
from tests.factories import make_user, random_email

ROOT = Path(__file__).resolve().parents[2]


def _redis() -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


def _prefixed_keys(prefix: str) -> list[bytes]:
    return list(_redis().scan_iter(match=f"{prefix}:*"))


@pytest.fixture
def redis_prefix(set_env) -> Iterator[str]:
    """Point the limiter at the real Redis under a unique prefix; delete its keys afterwards."""
    prefix = f"advisor-test-{uuid.uuid4().hex[:10]}"
    set_env(REDIS_URL=REDIS_URL)
    reset_limiter_cache(key_prefix=prefix)
    try:
        yield prefix
    finally:
        keys = _prefixed_keys(prefix)
        if keys:
            _redis().delete(*keys)
        reset_limiter_cache()


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "redis":
        yield request.getfixturevalue("redis_prefix")
    else:
        reset_limiter_cache()
        yield "memory"
        reset_limiter_cache()


# ------------------------------------------------------------------------------------------------
# rate limits
# ------------------------------------------------------------------------------------------------
def test_turn_n_plus_one_in_a_minute_is_refused(sqlite_url: str, set_env, storage: str) -> None:
    set_env(CHAT_TURNS_PER_MINUTE="3")
    user = make_user()
    other = make_user()
    for _ in range(3):
        check_turn_allowed(user_id=user)
    with pytest.raises(LimitExceeded) as info:
        check_turn_allowed(user_id=user)
    exc = info.value
    assert exc.limit == "chat_turns" and exc.allowed == 3 and exc.used == 3
    assert 0 < exc.retry_after_s <= 60
    assert "3 per minute" in exc.message and "try again in" in exc.message
    assert exc.resets_at > datetime.now(UTC)
    check_turn_allowed(user_id=other)  # per user
    assert usage_summary(user_id=user).turns_left_this_minute == 0


def test_clear_user_limits_resets_the_counters(sqlite_url: str, set_env, storage: str) -> None:
    set_env(CHAT_TURNS_PER_MINUTE="1", SIGNIN_ATTEMPTS_PER_WINDOW="1")
    user = make_user()
    email = random_email()
    check_turn_allowed(user_id=user)
    rate_limits.take_signin_attempt(email=email, session_key="k")
    with pytest.raises(LimitExceeded):
        check_turn_allowed(user_id=user)
    with pytest.raises(LimitExceeded):
        rate_limits.take_signin_attempt(email=email, session_key="other")
    rate_limits.clear_user_limits(user_id=user, email=email)
    check_turn_allowed(user_id=user)
    rate_limits.take_signin_attempt(email=email, session_key="other2")


def test_redis_keys_have_ttl_and_no_content(sqlite_url: str, set_env, redis_prefix: str) -> None:
    set_env(CHAT_TURNS_PER_MINUTE="5", SIGNIN_WINDOW_S="300")
    reset_limiter_cache(key_prefix=redis_prefix)
    user = make_user()
    email = random_email()
    check_turn_allowed(user_id=user)
    rate_limits.take_signin_attempt(email=email, session_key="session-key-abc")
    keys = _prefixed_keys(redis_prefix)
    assert len(keys) == 3  # chat turns, failed sign-ins by email, by session
    r = _redis()
    for key in keys:
        ttl = r.ttl(key)
        assert 0 < ttl <= 300, (key, ttl)
        name = key.decode()
        assert email not in name and email.split("@")[0] not in name and "session-key-abc" not in name
        # nor a plain hash of them (reversible by hashing candidate emails or addresses): a keyed one
        for plain in (email, "session-key-abc"):
            assert hashlib.sha256(plain.encode()).hexdigest()[:32] not in name
        for value in r.lrange(key, 0, -1):
            float(value)  # only timestamps are stored
    # the key depends on the deployment's secret (every replica has the same one)
    digest = rate_limits._digest(email)
    assert digest == rate_limits._digest(email.upper())
    set_env(DELETION_SALT="another-deployments-secret")
    assert rate_limits._digest(email) != digest


def test_two_processes_share_the_redis_counter(sqlite_url: str, set_env, redis_prefix: str) -> None:
    set_env(CHAT_TURNS_PER_MINUTE="4")
    user = make_user()
    script = textwrap.dedent(
        f"""
        import sys, uuid
        from core.quotas import check_turn_allowed
        from core.rate_limits import LimitExceeded, reset_limiter_cache
        reset_limiter_cache(key_prefix={redis_prefix!r})
        ok = 0
        for _ in range(3):
            try:
                check_turn_allowed(user_id=uuid.UUID({str(user)!r}))
                ok += 1
            except LimitExceeded:
                pass
        print(ok)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert sum(int(o.strip().splitlines()[-1]) for o in outputs) == 4
    with pytest.raises(LimitExceeded):  # and this process sees the same counter
        check_turn_allowed(user_id=user)



# ------------------------------------------------------------------------------------------------
# sign-in attempts
# ------------------------------------------------------------------------------------------------
def test_parallel_wrong_passwords_cannot_pass_the_lockout(any_db_url: str, set_env, storage: str) -> None:
    """Attempts are counted before the password is checked: 20 guesses at once from 20 sessions
    against a limit of 3 get at most 3 password checks (counting after the check let all 20 through)."""
    from core import accounts
    from models.schemas import SignInIn, SignUpIn

    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="3", SIGNIN_WINDOW_S="300")
    reset_limiter_cache(key_prefix=storage if storage != "memory" else None)
    email = random_email()
    accounts.sign_up(SignUpIn(email=email, password="Correct-horse-42"))
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        barrier.wait()
        try:
            accounts.sign_in(SignInIn(email=email, password=f"wrong-guess-{i}"), session_key=f"s{i}")
            outcome = "signed in"
        except LimitExceeded:
            outcome = "locked"
        except accounts.AuthError:
            outcome = "checked"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("checked") == 3 and outcomes.count("locked") == 17, outcomes


def test_one_client_address_spraying_many_emails_is_stopped(any_db_url: str, set_env, storage: str) -> None:
    """A script opening a new session for each guess at another email gets past the per-email and
    per-session counts; the per-address count stops it. Attempts refused for the address are not
    charged to the emails (they would otherwise be locked for their owners), and another address,
    or a client whose address is unknown, is not affected."""
    from core import accounts
    from models.schemas import SignInIn, SignUpIn

    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="3", SIGNIN_ATTEMPTS_PER_EMAIL="3", SIGNIN_ATTEMPTS_PER_CLIENT="5",
            SIGNIN_WINDOW_S="300")
    reset_limiter_cache(key_prefix=storage if storage != "memory" else None)
    victims = [random_email() for _ in range(8)]
    for email in victims:
        accounts.sign_up(SignUpIn(email=email, password="Correct-horse-42"))
    outcomes = []
    for i, email in enumerate(victims):
        try:
            accounts.sign_in(SignInIn(email=email, password="Summer-2026!"), session_key=f"spray-{i}",
                             client="203.0.113.7")
            outcomes.append("signed in")
        except LimitExceeded as exc:
            assert exc.limit == "signin" and "Too many attempts" in exc.message
            outcomes.append("locked")
        except accounts.AuthError:
            outcomes.append("checked")
    assert outcomes == ["checked"] * 5 + ["locked"] * 3
    # the emails the refused attempts aimed at were not charged: each still has all 3 attempts
    for n, email in enumerate(victims[5:]):
        for k in range(3):
            with pytest.raises(accounts.AuthError):
                accounts.sign_in(SignInIn(email=email, password="wrong-guess"), session_key=f"own-{n}-{k}",
                                 client=f"198.51.100.{100 + n}")
    # the owners of the emails that were guessed at, from their own addresses (or from localhost:
    # no address), are not locked out
    for n, email in enumerate(victims[:5]):
        client = None if n % 2 else f"198.51.100.{n}"
        user = accounts.sign_in(SignInIn(email=email, password="Correct-horse-42"), session_key=f"owner-{n}",
                                client=client)
        assert user.email == email


def _sign_in_outcome(email: str, password: str, client: str, session: str) -> str:
    """One sign-in attempt: "in", "wrong" (password refused) or "locked" (a limit refused it)."""
    from core import accounts
    from models.schemas import SignInIn

    try:
        accounts.sign_in(SignInIn(email=email, password=password), session_key=session, client=client)
        return "in"
    except LimitExceeded:
        return "locked"
    except accounts.AuthError:
        return "wrong"


def test_a_guesser_at_one_address_cannot_lock_the_owner_out(sqlite_url: str, set_env, storage: str) -> None:
    """Attempts at an email are limited per client address, and in total across addresses: wrong
    guesses from one address lock that address out of the account, not the owner at another one;
    guesses from many addresses stop at the total, for everyone, until the window ends."""
    from core import accounts
    from models.schemas import SignUpIn

    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="2", SIGNIN_ATTEMPTS_PER_EMAIL="5", SIGNIN_ATTEMPTS_PER_CLIENT="100",
            SIGNIN_WINDOW_S="300")
    reset_limiter_cache(key_prefix=storage if storage != "memory" else None)
    owner = random_email()
    accounts.sign_up(SignUpIn(email=owner, password="Correct-horse-42"))

    def attempt(password: str, client: str, session: str) -> str:
        return _sign_in_outcome(owner, password, client, session)

    guesses = [attempt("Guess-1234", "203.0.113.66", f"g{i}") for i in range(4)]
    assert guesses == ["wrong", "wrong", "locked", "locked"]
    assert attempt("Correct-horse-42", "198.51.100.20", "owner-1") == "in"  # the owner, elsewhere
    # the owner's sign-in cleared the email's counts; guessers at three more addresses use up the total
    spread = [attempt("Guess-1234", f"203.0.113.{70 + i // 2}", f"s{i}") for i in range(6)]
    assert spread == ["wrong"] * 5 + ["locked"]
    assert attempt("Correct-horse-42", "198.51.100.21", "owner-2") == "locked"  # until the window ends


def test_guessers_at_many_addresses_cannot_lock_the_owner_out_of_an_address_they_used(
    any_db_url: str, set_env, storage: str
) -> None:
    """Guessers at many addresses use up the email's total, but an address the account signed in
    from recently is not held to it: the owner signs in there. It still has its own per-address count
    (a guesser behind the owner's NAT gets 2 tries), a new address stays locked, and an address last
    used longer ago than ADVISOR_SIGNIN_KNOWN_ADDRESS_DAYS is not known any more. Only a keyed hash of
    the address is stored."""
    from core import accounts
    from core.db import system_session
    from models import SigninAddress
    from models.schemas import SignUpIn

    set_env(SIGNIN_ATTEMPTS_PER_WINDOW="2", SIGNIN_ATTEMPTS_PER_EMAIL="5", SIGNIN_ATTEMPTS_PER_CLIENT="100",
            SIGNIN_WINDOW_S="300", SIGNIN_KNOWN_ADDRESS_DAYS="30")
    reset_limiter_cache(key_prefix=storage if storage != "memory" else None)
    owner = random_email()
    accounts.sign_up(SignUpIn(email=owner, password="Correct-horse-42"))
    home, office = "198.51.100.20", "2001:db8::20"

    def attempt(password: str, client: str, session: str) -> str:
        return _sign_in_outcome(owner, password, client, session)

    assert attempt("Correct-horse-42", home, "owner-home") == "in"
    assert attempt("Correct-horse-42", office, "owner-office") == "in"
    with system_session() as s:
        stored = s.exec(select(SigninAddress)).all()
    assert len(stored) == 2 and all(home not in r.address_hash and office not in r.address_hash for r in stored)
    spread = [attempt("Guess-1234", f"203.0.113.{70 + i // 2}", f"s{i}") for i in range(6)]
    assert spread == ["wrong"] * 5 + ["locked"]  # the email's total is used up
    assert attempt("Correct-horse-42", "198.51.100.99", "owner-new") == "locked"  # a new address: locked
    # a guesser behind the owner's home address: its own count of 2 still applies
    assert [attempt("Guess-1234", home, f"nat{i}") for i in range(3)] == ["wrong", "wrong", "locked"]
    assert attempt("Correct-horse-42", office, "owner-office-2") == "in"  # the owner, at a known address
    # the owner's sign-in cleared the email's counts: spread again, then let the office address go stale
    assert [attempt("Guess-1234", f"203.0.113.{90 + i // 2}", f"t{i}") for i in range(6)][-1] == "locked"
    with system_session() as s:
        s.execute(update(SigninAddress).values(last_seen=datetime.now(UTC) - timedelta(days=31)))
    assert attempt("Correct-horse-42", office, "owner-office-3") == "locked"


def test_sign_ins_behind_one_shared_address_do_not_use_up_its_budget(sqlite_url: str, set_env,
                                                                   storage: str) -> None:
    """Only failures count against an address: everyone behind one NAT or proxy can sign in, however
    many they are, and a few typos among them do not lock the others out."""
    from core import accounts
    from models.schemas import SignInIn, SignUpIn

    set_env(SIGNIN_ATTEMPTS_PER_CLIENT="3", SIGNIN_WINDOW_S="300")
    reset_limiter_cache(key_prefix=storage if storage != "memory" else None)
    people = [random_email() for _ in range(10)]
    for email in people:
        accounts.sign_up(SignUpIn(email=email, password="Correct-horse-42"))
    with pytest.raises(accounts.AuthError):  # one typo
        accounts.sign_in(SignInIn(email=people[0], password="Correct-horse-41"), session_key="t", client="192.0.2.1")
    for n, email in enumerate(people):
        assert accounts.sign_in(SignInIn(email=email, password="Correct-horse-42"), session_key=f"p{n}",
                                client="192.0.2.1").email == email


def test_stale_sign_in_addresses_are_forgotten_at_start(any_db_url: str, set_env) -> None:
    """Addresses are kept only while they can serve: the start-up sweep deletes those of every
    account last used longer ago than ADVISOR_SIGNIN_KNOWN_ADDRESS_DAYS, and all of them when it is 0."""
    from core.accounts import forget_stale_signin_addresses
    from core.db import system_session
    from models import SigninAddress

    set_env(SIGNIN_KNOWN_ADDRESS_DAYS="30")
    now = datetime(2026, 6, 1, tzinfo=UTC)
    users = [make_user(), make_user()]
    with system_session() as s:
        for n, user in enumerate(users):
            s.add(SigninAddress(user_id=user, address_hash=f"fresh{n}", last_seen=now - timedelta(days=29)))
            s.add(SigninAddress(user_id=user, address_hash=f"stale{n}", last_seen=now - timedelta(days=31)))
    assert forget_stale_signin_addresses(now=now) == 2
    with system_session() as s:
        assert sorted(r.address_hash for r in s.exec(select(SigninAddress)).all()) == ["fresh0", "fresh1"]
    set_env(SIGNIN_KNOWN_ADDRESS_DAYS="0")  # the exemption is off: nothing is kept
    assert forget_stale_signin_addresses(now=now) == 2


# ------------------------------------------------------------------------------------------------
# sign-ups per client address
# ------------------------------------------------------------------------------------------------
def test_sign_ups_are_limited_per_client_address(any_db_url: str, set_env, storage: str) -> None:
    """One address creates at most ADVISOR_SIGNUPS_PER_CLIENT_PER_HOUR accounts an hour: the next
    sign-up from it is refused by ``accounts.sign_up`` itself, with a message that says so and when
    to try again, and creates nothing. Another address, and a client whose address is unknown, are
    not held to it; a password refused by the rules does not use a slot."""
    from core import accounts
    from core.db import system_session
    from core.settings import get_settings
    from models import User
    from models.schemas import SignUpIn

    assert get_settings().signups_per_client_per_hour == 5  # the default
    set_env(SIGNUPS_PER_CLIENT_PER_HOUR="3")
    reset_limiter_cache(key_prefix=storage if storage != "memory" else None)
    with pytest.raises(accounts.PasswordRuleError):
        accounts.sign_up(SignUpIn(email=random_email(), password="onlylowercaseletters"), client="203.0.113.7")
    for n in range(3):
        accounts.sign_up(SignUpIn(email=random_email(), password="Correct-horse-42"), session_key=f"s{n}",
                         client="203.0.113.7")
    refused = random_email()
    with pytest.raises(accounts.SignUpLimitReached) as info:
        accounts.sign_up(SignUpIn(email=refused, password="Correct-horse-42"), session_key="s9",
                         client="203.0.113.7")
    exc = info.value
    assert isinstance(exc, accounts.AuthError) and exc.field == "email"
    assert exc.message.startswith("Too many accounts have been created from your network address: at most 3 "
                                  "per hour. Try again in "), exc.message
    assert 0 < exc.retry_after_s <= 3600
    with system_session() as s:
        assert s.exec(select(User).where(User.email == refused)).first() is None
    accounts.sign_up(SignUpIn(email=random_email(), password="Correct-horse-42"), client="198.51.100.8")
    accounts.sign_up(SignUpIn(email=random_email(), password="Correct-horse-42"), client=None)
