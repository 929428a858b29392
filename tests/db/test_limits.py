"""Rate limits and quotas (C7), against memory:// and the real Redis; Redis keys expire (C20)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from sqlalchemy import update
from sqlmodel import col, select

from core import limits
from core.admin import set_quota_override
from core.db import system_session, user_session
from core.limits import LimitExceeded, check_turn_allowed, reset_limiter_cache, usage_summary
from models import AgentRun, Conversation, UsageCounter
from models.schemas import QuotaOverrideIn
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


def _add_run(user_id: uuid.UUID, *, at: datetime, tokens: tuple[int, int] = (0, 0), cost: str | None = None):
    with system_session() as s:  # a finished run: a user session only starts runs as pending
        conv = Conversation(user_id=user_id)
        s.add(conv)
        s.flush()
        s.add(
            AgentRun(
                user_id=user_id,
                conversation_id=conv.id,
                created_at=at,
                user_message="q",
                output="a",
                status="ok",
                input_tokens=tokens[0],
                output_tokens=tokens[1],
                cost_usd=Decimal(cost) if cost is not None else None,
                request_id="r",
            )
        )


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
    limits.take_signin_attempt(email=email, session_key="k")
    with pytest.raises(LimitExceeded):
        check_turn_allowed(user_id=user)
    with pytest.raises(LimitExceeded):
        limits.take_signin_attempt(email=email, session_key="other")
    limits.clear_user_limits(user_id=user, email=email)
    check_turn_allowed(user_id=user)
    limits.take_signin_attempt(email=email, session_key="other2")


def test_redis_keys_have_ttl_and_no_content(sqlite_url: str, set_env, redis_prefix: str) -> None:
    set_env(CHAT_TURNS_PER_MINUTE="5", SIGNIN_WINDOW_S="300")
    reset_limiter_cache(key_prefix=redis_prefix)
    user = make_user()
    email = random_email()
    check_turn_allowed(user_id=user)
    limits.take_signin_attempt(email=email, session_key="session-key-abc")
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
    digest = limits._digest(email)
    assert digest == limits._digest(email.upper())
    set_env(DELETION_SALT="another-deployments-secret")
    assert limits._digest(email) != digest


def test_two_processes_share_the_redis_counter(sqlite_url: str, set_env, redis_prefix: str) -> None:
    set_env(CHAT_TURNS_PER_MINUTE="4")
    user = make_user()
    script = textwrap.dedent(
        f"""
        import sys, uuid
        from core.limits import LimitExceeded, check_turn_allowed, reset_limiter_cache
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
# quotas (injectable clock)
# ------------------------------------------------------------------------------------------------
def test_daily_token_quota_boundary_and_reset(any_db_url: str, set_env) -> None:
    set_env(TOKENS_PER_DAY="1000")
    reset_limiter_cache()
    user = make_user()
    now = datetime(2026, 3, 15, 20, 48, tzinfo=UTC)
    _add_run(user, at=now - timedelta(days=1), tokens=(5000, 5000))  # yesterday: does not count
    _add_run(user, at=now - timedelta(hours=1), tokens=(600, 399))
    check_turn_allowed(user_id=user, now=now)  # 999 < 1000
    _add_run(user, at=now - timedelta(minutes=1), tokens=(1, 0))
    with pytest.raises(LimitExceeded) as info:
        check_turn_allowed(user_id=user, now=now)
    exc = info.value
    assert exc.limit == "tokens_per_day" and exc.used == 1000 and exc.allowed == 1000
    assert exc.resets_at == datetime(2026, 3, 16, tzinfo=UTC)
    assert exc.retry_after_s == 3 * 3600 + 12 * 60
    assert exc.message == (
        "Daily token quota reached: 1,000 of 1,000 tokens used today; resets at 00:00 UTC (in 3 h 12 min)."
    )
    check_turn_allowed(user_id=user, now=datetime(2026, 3, 16, 0, 0, 1, tzinfo=UTC))  # next day
    summary = usage_summary(user_id=user, now=now)
    assert summary.tokens_today == 1000 and summary.tokens_per_day == 1000


def test_monthly_cost_quota_boundary_and_reset(any_db_url: str, set_env) -> None:
    set_env(COST_PER_MONTH_USD="1.00")
    reset_limiter_cache()
    user = make_user()
    _add_run(user, at=datetime(2026, 11, 30, 23, 0, tzinfo=UTC), cost="5")  # last month
    _add_run(user, at=datetime(2026, 12, 2, tzinfo=UTC), cost="0.60")
    _add_run(user, at=datetime(2026, 12, 3, tzinfo=UTC), cost=None)  # unknown cost counts as 0
    check_turn_allowed(user_id=user, now=datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    _add_run(user, at=datetime(2026, 12, 4, tzinfo=UTC), cost="0.40")
    with pytest.raises(LimitExceeded) as info:
        check_turn_allowed(user_id=user, now=datetime(2026, 12, 31, 23, 0, tzinfo=UTC))
    exc = info.value
    assert exc.limit == "cost_per_month" and exc.used == Decimal("1") and exc.allowed == Decimal("1")
    assert exc.resets_at == datetime(2027, 1, 1, tzinfo=UTC)
    assert "Monthly cost quota reached: $1.00 of $1.00 used this month" in exc.message
    assert "resets on 2027-01-01 at 00:00 UTC (in 1 h)" in exc.message
    check_turn_allowed(user_id=user, now=datetime(2027, 1, 1, tzinfo=UTC))  # new month
    summary = usage_summary(user_id=user, now=datetime(2026, 12, 31, tzinfo=UTC))
    assert summary.cost_month_usd == Decimal("1") and summary.cost_per_month_usd == Decimal("1")
    # the run of unknown cost is not in the sum, and the summary says so (the quota panel shows it)
    assert summary.unknown_cost_runs_month == 1
    _add_run(user, at=datetime(2026, 11, 30, tzinfo=UTC), cost=None)  # last month: not this month's
    with system_session() as s:  # a run that failed before any usage: no tokens, so no cost missing
        conv = Conversation(user_id=user)
        s.add(conv)
        s.flush()
        s.add(AgentRun(user_id=user, conversation_id=conv.id, created_at=datetime(2026, 12, 5, tzinfo=UTC),
                       user_message="q", output="", status="error", request_id="r"))
    assert usage_summary(user_id=user, now=datetime(2026, 12, 31, tzinfo=UTC)).unknown_cost_runs_month == 1
    assert usage_summary(user_id=user, now=datetime(2027, 1, 1, tzinfo=UTC)).unknown_cost_runs_month == 0


def test_per_user_override_replaces_the_default(any_db_url: str, set_env) -> None:
    set_env(TOKENS_PER_DAY="1000000")
    reset_limiter_cache()
    admin = make_user(is_admin=True)
    user = make_user()
    now = datetime(2026, 5, 5, 12, tzinfo=UTC)
    _add_run(user, at=now, tokens=(50, 50))
    check_turn_allowed(user_id=user, now=now)
    set_quota_override(acting_user_id=admin, data=QuotaOverrideIn(user_id=user, tokens_per_day=100))
    with pytest.raises(LimitExceeded, match="100 of 100 tokens"):
        check_turn_allowed(user_id=user, now=now)
    set_quota_override(
        acting_user_id=admin, data=QuotaOverrideIn(user_id=user, cost_per_month_usd=Decimal(0))
    )
    with pytest.raises(LimitExceeded) as info:  # tokens override cleared; a 0 cost quota blocks
        check_turn_allowed(user_id=user, now=now)
    assert info.value.limit == "cost_per_month"


def test_naive_clock_is_refused(sqlite_url: str) -> None:
    with pytest.raises(ValueError, match="timezone"):
        check_turn_allowed(user_id=make_user(), now=datetime(2026, 1, 1))


# ------------------------------------------------------------------------------------------------
# usage counters (kept by the database from agent_runs, migration 0005)
# ------------------------------------------------------------------------------------------------
def _counters(user_id: uuid.UUID) -> dict[str, tuple[int, Decimal]]:
    with user_session(user_id) as s:
        rows = s.exec(select(UsageCounter).where(UsageCounter.user_id == user_id)).all()
    return {str(r.day): (int(r.tokens), Decimal(r.cost_usd).quantize(Decimal("0.00000001"))) for r in rows}


def test_counters_follow_every_change_of_a_runs_usage(any_db_url: str) -> None:
    """INSERT with usage, UPDATE of tokens/cost (the difference), a status-only UPDATE (nothing),
    runs on two UTC days: the counters equal the sums over the runs."""
    user = make_user()
    day1 = datetime(2026, 6, 1, 23, 59, 59, tzinfo=UTC)
    day2 = datetime(2026, 6, 2, 0, 0, 1, tzinfo=UTC)
    _add_run(user, at=day1, tokens=(100, 20), cost="0.5")
    _add_run(user, at=day2, tokens=(7, 3))
    with user_session(user) as s:
        conv = Conversation(user_id=user)
        s.add(conv)
        s.flush()
        pending = AgentRun(user_id=user, conversation_id=conv.id, created_at=day2, user_message="q",
                           status="pending", request_id="r")
        s.add(pending)
    assert _counters(user) == {"2026-06-01": (120, Decimal("0.5")), "2026-06-02": (10, Decimal(0))}
    with user_session(user) as s:  # the chat turn's finish: tokens and cost arrive by UPDATE
        s.execute(update(AgentRun).where(col(AgentRun.id) == pending.id).values(
            status="ok", input_tokens=40, cached_input_tokens=5, cache_write_tokens=2, output_tokens=3,
            cost_usd=Decimal("0.25")))
    assert _counters(user) == {"2026-06-01": (120, Decimal("0.5")), "2026-06-02": (60, Decimal("0.25"))}
    with user_session(user) as s:  # a correction: the difference is applied, not the new value again
        s.execute(update(AgentRun).where(col(AgentRun.id) == pending.id).values(output_tokens=13))
        s.execute(update(AgentRun).where(col(AgentRun.id) == pending.id).values(status="interrupted"))
    assert _counters(user) == {"2026-06-01": (120, Decimal("0.5")), "2026-06-02": (70, Decimal("0.25"))}


def test_deleting_a_conversation_does_not_give_quota_back(any_db_url: str, set_env) -> None:
    set_env(TOKENS_PER_DAY="100")
    reset_limiter_cache()
    user = make_user()
    now = datetime(2026, 7, 7, 12, tzinfo=UTC)
    _add_run(user, at=now - timedelta(hours=1), tokens=(60, 40))
    with pytest.raises(LimitExceeded):
        check_turn_allowed(user_id=user, now=now)
    with user_session(user) as s:  # the runs go with their conversation (ON DELETE CASCADE)
        for conv in s.exec(select(Conversation).where(Conversation.user_id == user)).all():
            s.delete(conv)
    with user_session(user) as s:
        assert s.exec(select(AgentRun).where(AgentRun.user_id == user)).all() == []
    with pytest.raises(LimitExceeded) as info:
        check_turn_allowed(user_id=user, now=now)
    assert info.value.used == 100


def test_other_users_usage_does_not_count(any_db_url: str, set_env) -> None:
    set_env(TOKENS_PER_DAY="100")
    reset_limiter_cache()
    user, other = make_user(), make_user()
    now = datetime(2026, 7, 8, 12, tzinfo=UTC)
    _add_run(other, at=now, tokens=(500, 500))
    _add_run(user, at=now, tokens=(10, 10))
    check_turn_allowed(user_id=user, now=now)
    assert usage_summary(user_id=user, now=now).tokens_today == 20
    assert _counters(other) == {"2026-07-08": (1000, Decimal(0))}


# ------------------------------------------------------------------------------------------------
# the in-process storage: no thread per hit, expired entries still swept
# ------------------------------------------------------------------------------------------------
def test_memory_storage_starts_no_thread_per_hit_and_still_expires_entries() -> None:
    from limits import RateLimitItemPerSecond
    from limits.strategies import MovingWindowRateLimiter

    storage = limits.SweptMemoryStorage(sweep_s=0.05)
    try:
        limiter = MovingWindowRateLimiter(storage)
        item = RateLimitItemPerSecond(2, 1, namespace="t")
        started: list[str] = []
        original_start = threading.Thread.start

        def spy(self: threading.Thread) -> None:
            started.append(self.name)
            original_start(self)

        threading.Thread.start = spy  # type: ignore[method-assign]
        try:
            for _ in range(3):
                time.sleep(0.02)  # idle longer than the library's 10 ms timer: it would start one each time
                limiter.hit(item, "user", "u1")
        finally:
            threading.Thread.start = original_start  # type: ignore[method-assign]
        assert started == []
        assert not limiter.hit(item, "user", "u1")  # the window still counts: 2 per second
        assert storage.events  # entries held ...
        deadline = time.monotonic() + 5
        while any(storage.events.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(storage.events.values())  # ... and swept once their window has passed
        assert limiter.hit(item, "user", "u1")
    finally:
        storage.close()


def test_bench_seeding_keeps_the_counters_equal_to_the_runs(pg_url: str) -> None:
    """bench.seed_runs copies runs with the usage trigger off and sums them once: same counters."""
    from sqlalchemy import text as sql_text

    from bench.seed_runs import seed_runs
    from core.db import engine_for

    seed_runs(database_url=pg_url, users=3, runs=600, days=10, progress=False)
    with engine_for(pg_url).connect() as conn:
        expected = conn.execute(sql_text(
            "SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, sum(coalesce(input_tokens, 0) "
            "+ coalesce(cached_input_tokens, 0) + coalesce(cache_write_tokens, 0) + coalesce(output_tokens, 0)), "
            "sum(coalesce(cost_usd, 0)) FROM agent_runs GROUP BY 1, 2 ORDER BY 1, 2")).all()
        counters = conn.execute(sql_text(
            "SELECT user_id, day, tokens, cost_usd FROM usage_counters ORDER BY 1, 2")).all()
        enabled = conn.execute(sql_text(
            "SELECT tgenabled FROM pg_trigger WHERE tgname = 'agent_runs_count_usage_insert'")).scalar_one()
    assert len(expected) > 10
    assert [tuple(r) for r in counters] == [tuple(r) for r in expected]
    assert enabled == "O"  # the trigger is on again


def test_a_dropped_memory_storage_stops_its_sweeper() -> None:
    import gc

    storage = limits.SweptMemoryStorage(sweep_s=0.02)
    sweeper = storage._sweeper
    assert sweeper.is_alive()
    storage.timer.join()  # the library's first Timer (started by its __init__) holds the storage until it ran
    del storage
    gc.collect()
    sweeper.join(timeout=2)
    assert not sweeper.is_alive()


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


@pytest.mark.parametrize(
    ("peer", "forwarded", "hops", "expected"),
    [
        ("203.0.113.5", [], 0, "203.0.113.5"),  # no proxy: the peer
        ("203.0.113.5", ["198.51.100.1"], 0, "203.0.113.5"),  # a header nobody trusts is ignored
        (None, [], 0, None),  # localhost: unknown, not counted
        ("10.0.0.2", ["198.51.100.1"], 1, "198.51.100.1"),  # behind our load balancer
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], 1, "198.51.100.1"),  # a forged entry on the left
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1, 10.0.0.9"], 2, "198.51.100.1"),  # two proxies, two headers
        ("203.0.113.5", [], 1, "203.0.113.5"),  # not through our proxy: the peer
        ("10.0.0.2", ["not-an-address"], 1, None),
        ("10.0.0.2", ["[2001:db8::1]"], 1, "2001:db8::1"),
    ],
)
def test_client_address(peer, forwarded, hops, expected) -> None:
    assert limits.client_address(peer, forwarded, hops) == expected


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
