"""Rate limits (the ``limits`` library, moving window) and usage quotas (from ``usage_counters``).

Rate limits live in ``memory://`` (one process) or, when ``ADVISOR_REDIS_URL`` is set, in Redis
under the key prefix ``advisor`` so every app process shares the counters. The ``limits`` library
writes each window as one Redis list with an expiry equal to the window (claim C20): keys carry a
TTL, and hold only timestamps. Identifiers in keys are a user id or a sha256 of an email /
session key, never an email, a password or message content.

- chat turns: ``settings.chat_turns_per_minute`` per user, moving window of one minute;
- failed sign-ins: ``settings.signin_attempts_per_window`` per ``settings.signin_window_s``,
  counted per email and per session key;
- quotas (no Redis involved; read on every turn from ``usage_counters``, which the database keeps
  from ``agent_runs``): tokens per UTC day (input, cached input, cache writes and output) and cost
  per UTC calendar month (runs count on the UTC day they were created), defaults from
  settings, per-user overrides from ``users.quota_tokens_per_day`` /
  ``users.quota_cost_per_month_usd``. A quota of 0 blocks.

A chat turn consumes its rate-limit slot (``consume_chat_turn``) and then checks the quotas in the
transaction that stores its message (``core.chat``: on PostgreSQL inside the accepting statement,
elsewhere with ``quota_usage`` / ``quota_refusal``). ``check_turn_allowed()`` does both checks on its
own, for a caller outside a turn. A refusal raises ``LimitExceeded``, whose ``message`` names the
limit, the usage and when it resets.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage, StorageTypes, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import Date, Uuid, bindparam, func
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from core.db import NotFound, user_session
from core.settings import get_settings, secret_hmac
from models import AgentRun

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "LimitExceeded",
    "LimitName",
    "QuotaPeriods",
    "QuotaUsage",
    "UsageSummary",
    "check_turn_allowed",
    "clear_signin_failures",
    "clear_user_limits",
    "client_address",
    "consume_chat_turn",
    "format_duration",
    "quota_periods",
    "quota_refusal",
    "quota_usage",
    "record_signin_failure",
    "reset_limiter_cache",
    "take_signin_attempt",
    "usage_summary",
]

DEFAULT_KEY_PREFIX = "advisor"
LimitName = Literal["chat_turns", "tokens_per_day", "cost_per_month", "signin"]


class LimitExceeded(Exception):
    """A rate limit or quota refused the action; ``message`` is safe to show to the user."""

    def __init__(
        self,
        *,
        limit: LimitName,
        message: str,
        used: int | Decimal,
        allowed: int | Decimal,
        resets_at: datetime,
        retry_after_s: int,
    ) -> None:
        super().__init__(message)
        self.limit: LimitName = limit
        self.message = message
        self.used = used
        self.allowed = allowed
        self.resets_at = resets_at
        self.retry_after_s = retry_after_s


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


# ------------------------------------------------------------------------------------------------
# storage and limiter (one per (storage url, key prefix), shared by the process)
# ------------------------------------------------------------------------------------------------
_lock = threading.Lock()
_key_prefix = DEFAULT_KEY_PREFIX
_limiters: dict[tuple[str, str], tuple[StorageTypes, MovingWindowRateLimiter]] = {}


class SweptMemoryStorage(MemoryStorage):
    """``limits``' in-process storage, with its expiry on one long-lived daemon thread.

    ``MemoryStorage`` starts a ``threading.Timer`` on the first hit after every idle 10 ms to drop
    expired entries; starting a thread costs ~0.4 ms on these machines, on the path of every chat
    turn. Here one sweeper per storage runs the library's own expiry every ``sweep_s`` seconds
    instead (entries are only ever read within their window, so a later sweep changes no
    decision; it only bounds memory). Pinned ``limits`` version; tests cover both properties.
    """

    STORAGE_SCHEME = ["advisor-memory"]  # noqa: RUF012 - its own scheme: never replaces "memory"

    def __init__(self, sweep_s: float = 1.0) -> None:
        super().__init__()
        stop = self._stop = threading.Event()
        ref = weakref.ref(self)  # the thread holds no strong reference: a dropped storage ends it

        def sweep() -> None:
            while not stop.wait(sweep_s):
                storage = ref()
                if storage is None:
                    return
                storage._MemoryStorage__expire_events()  # type: ignore[attr-defined]
                del storage

        self._sweeper = threading.Thread(target=sweep, name="rate-limit-sweeper", daemon=True)
        self._sweeper.start()

    def _MemoryStorage__schedule_expiry(self) -> None:  # the library's (name-mangled) hook: nothing to do
        return None

    def close(self) -> None:
        self._stop.set()


def _storage_url() -> str:
    return get_settings().redis_url or "memory://"


def _limiter() -> MovingWindowRateLimiter:
    url = _storage_url()
    key = (url, _key_prefix)
    with _lock:
        entry = _limiters.get(key)
        if entry is None:
            storage: StorageTypes
            if url.startswith("memory"):
                storage = SweptMemoryStorage()
            else:
                storage = storage_from_string(
                    url, key_prefix=_key_prefix, socket_connect_timeout=3, socket_timeout=3
                )
            entry = _limiters[key] = (storage, MovingWindowRateLimiter(storage))
    return entry[1]


def reset_limiter_cache(*, key_prefix: str | None = None) -> None:
    """For tests: forget storages and counters (memory), and optionally use another Redis prefix."""
    global _key_prefix
    with _lock:
        for storage, _ in _limiters.values():
            if isinstance(storage, MemoryStorage):
                storage.reset()
            if isinstance(storage, SweptMemoryStorage):
                storage.close()
        _limiters.clear()
        _key_prefix = key_prefix or DEFAULT_KEY_PREFIX


def _digest(value: str) -> str:
    """Keys name a keyed hash of an email, session key or client address, never the value itself.

    HMAC-SHA256 keyed with the deployment's secret (``ADVISOR_DELETION_SALT``, domain-separated): a
    plain hash of an email or an IPv4 address can be reversed by hashing the candidates, this one
    not without the secret. Every replica has the same secret, so they count under the same keys.
    """
    return secret_hmac(value.strip().lower(), domain="advisor-limiter")[:32]


def _chat_item() -> RateLimitItem:
    return RateLimitItemPerMinute(get_settings().chat_turns_per_minute, 1, namespace="chat")


def _signin_item() -> RateLimitItem:
    s = get_settings()
    return RateLimitItemPerSecond(s.signin_attempts_per_window, s.signin_window_s, namespace="signin")


def _signin_email_item() -> RateLimitItem:
    s = get_settings()
    return RateLimitItemPerSecond(s.signin_attempts_per_email, s.signin_window_s, namespace="signin")


def _signin_client_item() -> RateLimitItem:
    s = get_settings()
    return RateLimitItemPerSecond(s.signin_attempts_per_client, s.signin_window_s, namespace="signin")


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``3 h 12 min``, ``4 d 3 h``."""
    total = max(0, math.ceil(seconds))
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def _retry(reset_epoch: float) -> tuple[datetime, int]:
    retry = max(1, math.ceil(reset_epoch - time.time()))
    return datetime.fromtimestamp(reset_epoch, UTC), retry


# ------------------------------------------------------------------------------------------------
# sign-in attempts
# ------------------------------------------------------------------------------------------------
def take_signin_attempt(
    *, email: str, session_key: str, client: str | None = None, known_client: Callable[[], bool] | None = None
) -> None:
    """Count one sign-in (or sign-up) attempt before the password is looked at; raise
    ``LimitExceeded`` when a count it falls under has used up its attempts.

    - The browser session: ``signin_attempts_per_window``.
    - The email: ``signin_attempts_per_window`` from one client address (or from wherever, when the
      address is unknown), and ``signin_attempts_per_email`` from all addresses together. So a
      guesser at one address cannot lock the owner, who signs in from another, out of the account;
      guessers at many addresses are still stopped by the total -- except at an address the
      account has signed in from recently (``known_client()``, asked only when the total refuses:
      ``core.auth`` looks it up), so they cannot lock its owner out either.
    - The client address, when known: its *failed* attempts across every email and session
      (``record_signin_failure``, ``signin_attempts_per_client``). A script opening a new session
      for each guess at another email is stopped there, while the sign-ins of everyone behind one
      NAT or proxy do not use the budget up. It is checked before and counted after the password
      check, so it can be passed by as many attempts as are in flight at once; the counts above are
      taken first (the limiter's hit is atomic, in memory or in Redis), so they cannot.

    The widest count is checked first and a refusal stops there: an attempt refused for its address
    or session is charged to no email. A successful sign-in clears the email's counts
    (``clear_signin_failures``); the session's and the address's stay.
    """
    limiter = _limiter()
    if client:
        client_item, ident = _signin_client_item(), _digest(client)
        if not limiter.test(client_item, "client", ident):
            raise _signin_refusal(limiter, client_item, "client", ident)
    item = _signin_item()
    checks: list[tuple[RateLimitItem, str, str]] = [(item, "session", _digest(session_key))]
    if client:
        checks += [(item, "email_client", _email_at_client(email, client)),
                   (_signin_email_item(), "email_all", _digest(email))]
    else:
        checks.append((item, "email", _digest(email)))
    for limit_item, kind, ident in checks:
        if not limiter.hit(limit_item, kind, ident):
            if kind == "email_all" and known_client is not None and known_client():
                continue  # the owner's own address: only its per-address count applies
            raise _signin_refusal(limiter, limit_item, kind, ident)


def _email_at_client(email: str, client: str) -> str:
    """The key of the attempts at ``email`` from the address ``client``."""
    return _digest(f"{email.strip().lower()}\n{client}")


def client_address(remote_ip: str | None, forwarded_for: Sequence[str], trusted_proxy_hops: int) -> str | None:
    """The address sign-in failures are counted under (None: unknown, not counted).

    With no proxy of ours in front (``trusted_proxy_hops`` 0) it is the connection's peer. Behind
    ``trusted_proxy_hops`` proxies of ours, each of which appends the address it received the
    request from to ``X-Forwarded-For``, it is the entry that many places from the right: what the
    outermost of our proxies saw. Entries further left are written by the client and never trusted.
    A request with fewer entries did not come through our proxies: its peer is used.
    """
    chain = [part.strip() for header in forwarded_for for part in header.split(",") if part.strip()]
    candidate = chain[-trusted_proxy_hops] if 0 < trusted_proxy_hops <= len(chain) else remote_ip
    if not candidate:
        return None
    try:
        return str(ipaddress.ip_address(candidate.strip("[]")))
    except ValueError:
        return None


def record_signin_failure(*, client: str | None) -> None:
    """A sign-in failed (or a sign-up was refused): count it against the client address."""
    if client:
        _limiter().hit(_signin_client_item(), "client", _digest(client))


def _signin_refusal(limiter: MovingWindowRateLimiter, item: RateLimitItem, kind: str, ident: str) -> LimitExceeded:
    stats = limiter.get_window_stats(item, kind, ident)
    resets_at, retry = _retry(stats.reset_time)
    return LimitExceeded(
        limit="signin",
        message=f"Too many attempts — try again in {retry} s",
        used=item.amount - stats.remaining,
        allowed=item.amount,
        resets_at=resets_at,
        retry_after_s=retry,
    )


def clear_signin_failures(*, email: str, client: str | None = None) -> None:
    """After a successful sign-in the email's counts start again (from this address, and in total)."""
    limiter = _limiter()
    limiter.clear(_signin_item(), "email", _digest(email))
    limiter.clear(_signin_email_item(), "email_all", _digest(email))
    if client:
        limiter.clear(_signin_item(), "email_client", _email_at_client(email, client))


# ------------------------------------------------------------------------------------------------
# quotas
# ------------------------------------------------------------------------------------------------
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

    ``params`` are the bind parameters of every quota query (``usage_counters`` days are dates)."""

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
        return {"day": self.day, "mstart": self.month_start, "mend": self.month_end,
                "tokens_default": self.default_tokens, "cost_default": self.default_cost}

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


def usage_columns(param: Callable[[str], str]) -> str:
    """Today's tokens and this month's cost, as two select-list items (``tokens_today``,
    ``cost_month``) read from the per-day counters the database keeps as runs are recorded
    (migration 0005): at most 32 rows, however many runs the user has.

    The one definition of the figures the quotas compare: the quota check here and the chat turn's
    accepting statement on PostgreSQL (``core.chat._PG_ACCEPT``) both use it. ``param(name)`` writes
    the parameter ``name`` (``uid``, ``day``, ``mstart``, ``mend``) in the caller's style.
    """
    uid = param("uid")
    return (
        f"(SELECT coalesce(sum(k.tokens), 0) FROM usage_counters k "
        f"WHERE k.user_id = {uid} AND k.day = {param('day')}) AS tokens_today, "
        f"(SELECT coalesce(sum(k.cost_usd), 0) FROM usage_counters k "
        f"WHERE k.user_id = {uid} AND k.day >= {param('mstart')} AND k.day < {param('mend')}) AS cost_month"
    )


# One round trip: the user's overrides, today's tokens and this month's cost.
_USAGE_SQL = sql_text(
    "SELECT u.quota_tokens_per_day, u.quota_cost_per_month_usd, "
    f"{usage_columns(lambda name: ':' + name)} FROM users u WHERE u.id = :uid"
).bindparams(
    bindparam("uid", type_=Uuid()),
    bindparam("day", type_=Date()),
    bindparam("mstart", type_=Date()),
    bindparam("mend", type_=Date()),
)


def quota_usage(
    user_id: uuid.UUID, periods: QuotaPeriods, session: Session | Connection | None = None
) -> QuotaUsage:
    """Tokens used today (input, cached, cache-write and output) and cost this month, in one query.

    ``session``: run it in the caller's ``user_session`` / ``user_connection`` transaction.
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


def consume_chat_turn(user_id: uuid.UUID) -> None:
    """Count one chat turn against the per-minute rate limit; raise ``LimitExceeded`` when used up."""
    limiter = _limiter()
    item = _chat_item()
    if not limiter.hit(item, "user", str(user_id)):
        stats = limiter.get_window_stats(item, "user", str(user_id))
        resets_at, retry = _retry(stats.reset_time)
        raise LimitExceeded(
            limit="chat_turns",
            message=(
                f"Too many messages: {item.amount} per minute allowed; try again in {format_duration(retry)}."
            ),
            used=item.amount - stats.remaining,
            allowed=item.amount,
            resets_at=resets_at,
            retry_after_s=retry,
        )


def check_turn_allowed(
    *, user_id: uuid.UUID, now: datetime | None = None, session: Session | Connection | None = None
) -> None:
    """Raise ``LimitExceeded`` if this user may not start a chat turn now; otherwise count the turn.

    Quotas are checked first (they only read), then the per-minute rate limit is consumed.
    ``now`` (timezone-aware) sets the clock for the quota periods; the rate-limit window always
    uses the real clock. ``session``: the caller's ``user_session`` for ``user_id``.
    """
    periods = quota_periods(now)
    refusal = quota_refusal(quota_usage(user_id, periods, session), periods.now)
    if refusal is not None:
        raise refusal
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
    item = _chat_item()
    stats = _limiter().get_window_stats(item, "user", str(user_id))
    return UsageSummary(
        tokens_today=usage.tokens_today,
        tokens_per_day=usage.tokens_allowed,
        cost_month_usd=usage.cost_month,
        cost_per_month_usd=usage.cost_allowed,
        day_resets_at=usage.day_end,
        month_resets_at=usage.month_end,
        turns_per_minute=item.amount,
        turns_left_this_minute=max(0, stats.remaining),
        quota_reached=refusal.limit if refusal is not None else None,
        unknown_cost_runs_month=unknown,
    )


def clear_user_limits(*, user_id: uuid.UUID, email: str) -> None:
    """Remove this user's rate-limit keys (chat turns, sign-in attempts by email); privacy deletion.

    The counts of attempts at the email from one address are keyed by a hash of both, which cannot
    be found from the email alone: they expire with their window (``signin_window_s``).
    """
    limiter = _limiter()
    limiter.clear(_chat_item(), "user", str(user_id))
    limiter.clear(_signin_item(), "email", _digest(email))
    limiter.clear(_signin_email_item(), "email_all", _digest(email))
