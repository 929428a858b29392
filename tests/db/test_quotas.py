"""Usage quotas (C7): tokens per day and cost per month, from the usage counters the database keeps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from core.admin import set_quota_override
from core.db import system_session, user_session
from core.quotas import check_turn_allowed, usage_summary
from core.rate_limits import LimitExceeded, reset_limiter_cache
from models import AgentRun, Conversation, UsageCounter
from models.schemas import QuotaOverrideIn
from tests.factories import make_user


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


