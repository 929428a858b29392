"""Usage quotas: tokens per UTC day and cost per UTC calendar month, per user.

The figures come from ``usage_counters``, which the database keeps from ``agent_runs`` (migration
0005): tokens (input, cached input, cache writes and output) on the UTC day a run was created, and
its cost. The defaults are ``settings.tokens_per_day`` and ``settings.cost_per_month_usd``; an
admin's per-user overrides are ``users.quota_tokens_per_day`` / ``users.quota_cost_per_month_usd``.
A quota of 0 blocks.

This module is the one place the quota rule lives: ``check_quotas`` raises ``LimitExceeded`` with a
message that names the quota, the usage and when it resets. A chat turn calls it in the transaction
that stores its message (``core.chat``); ``check_turn_allowed`` checks the quotas and takes the
per-minute rate-limit slot (``core.rate_limits``) for a caller outside a turn; ``usage_summary`` is
what the usage panel shows.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Date, Uuid, bindparam, func
from sqlalchemy import text as sql_text
from sqlmodel import Session, col, select

from core.db import NotFound, user_session
from core.rate_limits import LimitExceeded, LimitName, chat_turns_left, consume_chat_turn, format_duration
from core.settings import get_settings
from models import AgentRun

__all__ = [
    "QuotaPeriods",
    "QuotaUsage",
    "UsageSummary",
    "check_quotas",
    "check_turn_allowed",
    "quota_periods",
    "quota_refusal",
    "quota_usage",
    "usage_summary",
]


@dataclass(frozen=True)
class UsageSummary:
    tokens_today: int
    tokens_per_day: int
    cost_month_usd: Decimal
    cost_per_month_usd: Decimal
    day_resets_at: datetime
    month_resets_at: datetime
    turns_per_minute: int
    turns_left_this_minute: int
    quota_reached: LimitName | None = None  # the quota a turn would be refused by now (quota_refusal)
    # runs this month that used tokens but have no cost (unpriced model, or cut before the output
    # count): cost_month_usd and the cost quota leave them out
    unknown_cost_runs_month: int = 0


def _day_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def _month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, nxt


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


@dataclass(frozen=True)
class QuotaUsage:
    """A user's quota position: used and allowed, and when each period ends."""

    tokens_today: int
    tokens_allowed: int
    cost_month: Decimal
    cost_allowed: Decimal
    day_end: datetime
    month_end: datetime


@dataclass(frozen=True)
class QuotaPeriods:
    """The periods quotas count in (UTC) and the defaults that apply without a per-user override.

    ``params`` are the bind parameters of the quota query (``usage_counters`` days are dates)."""

    now: datetime
    day: date
    month_start: date
    month_end: date
    day_end: datetime
    month_end_at: datetime
    default_tokens: int
    default_cost: Decimal

    @property
    def params(self) -> dict[str, object]:
        return {"day": self.day, "mstart": self.month_start, "mend": self.month_end}

    def usage(self, quota_tokens: int | None, quota_cost: object, tokens: object, cost: object) -> QuotaUsage:
        """From a quota row: the user's overrides (NULL: the default), tokens today, cost this month."""
        return QuotaUsage(
            tokens_today=int(tokens or 0),  # type: ignore[call-overload]
            tokens_allowed=int(quota_tokens) if quota_tokens is not None else self.default_tokens,
            cost_month=Decimal(str(cost or 0)),
            cost_allowed=Decimal(str(quota_cost)) if quota_cost is not None else self.default_cost,
            day_end=self.day_end,
            month_end=self.month_end_at,
        )


def quota_periods(now: datetime | None = None) -> QuotaPeriods:
    settings = get_settings()
    current = _now(now)
    day_start, day_end = _day_bounds(current)
    month_start, month_end = _month_bounds(current)
    return QuotaPeriods(
        now=current, day=day_start.date(), month_start=month_start.date(), month_end=month_end.date(),
        day_end=day_end, month_end_at=month_end, default_tokens=int(settings.tokens_per_day),
        default_cost=Decimal(settings.cost_per_month_usd),
    )


# One round trip: the user's overrides, today's tokens and this month's cost, read from the per-day
# counters (at most 32 rows, however many runs the user has).
_USAGE_SQL = sql_text(
    """
    SELECT u.quota_tokens_per_day, u.quota_cost_per_month_usd,
           (SELECT coalesce(sum(k.tokens), 0) FROM usage_counters k
            WHERE k.user_id = :uid AND k.day = :day) AS tokens_today,
           (SELECT coalesce(sum(k.cost_usd), 0) FROM usage_counters k
            WHERE k.user_id = :uid AND k.day >= :mstart AND k.day < :mend) AS cost_month
    FROM users u WHERE u.id = :uid
    """
).bindparams(
    bindparam("uid", type_=Uuid()),
    bindparam("day", type_=Date()),
    bindparam("mstart", type_=Date()),
    bindparam("mend", type_=Date()),
)


def quota_usage(user_id: uuid.UUID, periods: QuotaPeriods, session: Session | None = None) -> QuotaUsage:
    """Tokens used today (input, cached, cache-write and output) and cost this month, in one query.

    ``session``: run it in the caller's ``user_session`` transaction.
    """
    params = {"uid": user_id, **periods.params}
    if session is not None:
        row = session.execute(_USAGE_SQL, params).first()
    else:
        with user_session(user_id) as s:
            row = s.execute(_USAGE_SQL, params).first()
    if row is None:
        raise NotFound("user")
    return periods.usage(*row)


def _money(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.01')):,}"


def quota_refusal(usage: QuotaUsage, now: datetime) -> LimitExceeded | None:
    """The quota this usage has reached (tokens today first, then cost this month), or None."""
    if usage.tokens_today >= usage.tokens_allowed:
        wait = (usage.day_end - now).total_seconds()
        return LimitExceeded(
            limit="tokens_per_day",
            message=(
                f"Daily token quota reached: {usage.tokens_today:,} of {usage.tokens_allowed:,} tokens used "
                f"today; resets at 00:00 UTC (in {format_duration(wait)})."
            ),
            used=usage.tokens_today,
            allowed=usage.tokens_allowed,
            resets_at=usage.day_end,
            retry_after_s=max(1, math.ceil(wait)),
        )
    if usage.cost_month >= usage.cost_allowed:
        wait = (usage.month_end - now).total_seconds()
        return LimitExceeded(
            limit="cost_per_month",
            message=(
                f"Monthly cost quota reached: {_money(usage.cost_month)} of "
                f"{_money(usage.cost_allowed)} used this month; resets on {usage.month_end:%Y-%m-%d} "
                f"at 00:00 UTC (in {format_duration(wait)})."
            ),
            used=usage.cost_month,
            allowed=usage.cost_allowed,
            resets_at=usage.month_end,
            retry_after_s=max(1, math.ceil(wait)),
        )
    return None


def check_quotas(user_id: uuid.UUID, *, session: Session | None = None, now: datetime | None = None) -> None:
    """Raise ``LimitExceeded`` when a quota of this user is reached (tokens today first, then cost
    this month). ``session``: the caller's ``user_session`` for ``user_id``."""
    periods = quota_periods(now)
    refusal = quota_refusal(quota_usage(user_id, periods, session), periods.now)
    if refusal is not None:
        raise refusal


def check_turn_allowed(
    *, user_id: uuid.UUID, now: datetime | None = None, session: Session | None = None
) -> None:
    """Raise ``LimitExceeded`` if this user may not start a chat turn now; otherwise count the turn.

    Quotas are checked first (they only read), then the per-minute rate limit is consumed.
    ``now`` (timezone-aware) sets the clock for the quota periods; the rate-limit window always
    uses the real clock. ``session``: the caller's ``user_session`` for ``user_id``.
    """
    check_quotas(user_id, session=session, now=now)
    consume_chat_turn(user_id)


def _unknown_cost_runs(session: Session, user_id: uuid.UUID, start: datetime, end: datetime) -> int:
    stmt = select(func.count()).where(
        col(AgentRun.user_id) == user_id,
        col(AgentRun.created_at) >= start,
        col(AgentRun.created_at) < end,
        col(AgentRun.cost_usd).is_(None),
        col(AgentRun.input_tokens).is_not(None) | col(AgentRun.output_tokens).is_not(None),
    )
    return int(session.exec(stmt).one())


def usage_summary(*, user_id: uuid.UUID, now: datetime | None = None) -> UsageSummary:
    """Today's tokens, this month's cost, the limits that apply, turns left this minute, and how
    many of this month's runs have no known cost (so are not in the cost)."""
    periods = quota_periods(now)
    month_start = datetime.combine(periods.month_start, datetime.min.time(), UTC)
    with user_session(user_id) as session:
        usage = quota_usage(user_id, periods, session)
        unknown = _unknown_cost_runs(session, user_id, month_start, periods.month_end_at)
    refusal = quota_refusal(usage, periods.now)
    turns_per_minute, turns_left = chat_turns_left(user_id)
    return UsageSummary(
        tokens_today=usage.tokens_today,
        tokens_per_day=usage.tokens_allowed,
        cost_month_usd=usage.cost_month,
        cost_per_month_usd=usage.cost_allowed,
        day_resets_at=usage.day_end,
        month_resets_at=usage.month_end,
        turns_per_minute=turns_per_minute,
        turns_left_this_minute=turns_left,
        quota_reached=refusal.limit if refusal is not None else None,
        unknown_cost_runs_month=unknown,
    )


