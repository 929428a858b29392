"""Rate limits: the ``limits`` library (moving window) over its documented storages.

The counters live in ``memory://`` (one process) or, when ``ADVISOR_REDIS_URL`` is set, in Redis
under the key prefix ``advisor`` so every app process shares them; either storage is made by
``limits.storage.storage_from_string``. In Redis the library writes each window as one list with
an expiry equal to the window (claim C20): keys carry a TTL and hold only timestamps. Identifiers
in keys are a user id or a keyed hash of an email, session key or client address, never an email,
a password, an address or message content.

- chat turns: ``settings.chat_turns_per_minute`` per user, moving window of one minute
  (``consume_chat_turn``);
- sign-in attempts: ``settings.signin_attempts_per_window`` per ``settings.signin_window_s``,
  counted per email and per session, and failed ones per client address (``take_signin_attempt``);
- sign-ups: ``settings.signups_per_client_per_hour`` accounts per client address
  (``take_signup_slot``).

A refusal raises ``LimitExceeded``, whose ``message`` names the limit and when to try again. The
usage quotas (tokens per day, cost per month) are in ``core.quotas``.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.storage import MemoryStorage, StorageTypes, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from core.settings import get_settings, secret_hmac

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "LimitExceeded",
    "LimitName",
    "chat_turns_left",
    "clear_signin_failures",
    "clear_user_limits",
    "client_address",
    "consume_chat_turn",
    "format_duration",
    "record_signin_failure",
    "reset_limiter_cache",
    "take_signin_attempt",
    "take_signup_slot",
]

DEFAULT_KEY_PREFIX = "advisor"
LimitName = Literal["chat_turns", "tokens_per_day", "cost_per_month", "signin", "signup"]


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


# ------------------------------------------------------------------------------------------------
# storage and limiter (one per (storage url, key prefix), shared by the process)
# ------------------------------------------------------------------------------------------------
_lock = threading.Lock()
_key_prefix = DEFAULT_KEY_PREFIX
_limiters: dict[tuple[str, str], tuple[StorageTypes, MovingWindowRateLimiter]] = {}


def _storage_url() -> str:
    return get_settings().redis_url or "memory://"


def limiter() -> MovingWindowRateLimiter:
    """The process's moving-window limiter over the configured storage (made on first use)."""
    url = _storage_url()
    key = (url, _key_prefix)
    with _lock:
        entry = _limiters.get(key)
        if entry is None:
            storage = (
                storage_from_string(url) if url.startswith("memory")
                else storage_from_string(url, key_prefix=_key_prefix, socket_connect_timeout=3, socket_timeout=3)
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


def _signup_item() -> RateLimitItem:
    return RateLimitItemPerHour(get_settings().signups_per_client_per_hour, 1, namespace="signup")


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
# sign-in attempts and sign-ups
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
    rate = limiter()
    if client:
        client_item, ident = _signin_client_item(), _digest(client)
        if not rate.test(client_item, "client", ident):
            raise _signin_refusal(rate, client_item, "client", ident)
    item = _signin_item()
    checks: list[tuple[RateLimitItem, str, str]] = [(item, "session", _digest(session_key))]
    if client:
        checks += [(item, "email_client", _email_at_client(email, client)),
                   (_signin_email_item(), "email_all", _digest(email))]
    else:
        checks.append((item, "email", _digest(email)))
    for limit_item, kind, ident in checks:
        if not rate.hit(limit_item, kind, ident):
            if kind == "email_all" and known_client is not None and known_client():
                continue  # the owner's own address: only its per-address count applies
            raise _signin_refusal(rate, limit_item, kind, ident)


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
        limiter().hit(_signin_client_item(), "client", _digest(client))


def _signin_refusal(rate: MovingWindowRateLimiter, item: RateLimitItem, kind: str, ident: str) -> LimitExceeded:
    stats = rate.get_window_stats(item, kind, ident)
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
    rate = limiter()
    rate.clear(_signin_item(), "email", _digest(email))
    rate.clear(_signin_email_item(), "email_all", _digest(email))
    if client:
        rate.clear(_signin_item(), "email_client", _email_at_client(email, client))


def take_signup_slot(*, client: str | None) -> None:
    """Count one account created from ``client``; raise ``LimitExceeded`` when that address has
    created ``signups_per_client_per_hour`` accounts within the last hour. An unknown address
    (no peer, or one that is not an IP address) is not counted."""
    if not client:
        return
    item, ident = _signup_item(), _digest(client)
    if not limiter().hit(item, "client", ident):
        stats = limiter().get_window_stats(item, "client", ident)
        resets_at, retry = _retry(stats.reset_time)
        raise LimitExceeded(
            limit="signup",
            message=(f"Too many accounts have been created from your network address: at most {item.amount} "
                     f"per hour. Try again in {format_duration(retry)}."),
            used=item.amount - stats.remaining,
            allowed=item.amount,
            resets_at=resets_at,
            retry_after_s=retry,
        )


# ------------------------------------------------------------------------------------------------
# chat turns
# ------------------------------------------------------------------------------------------------
def consume_chat_turn(user_id: uuid.UUID) -> None:
    """Count one chat turn against the per-minute rate limit; raise ``LimitExceeded`` when used up."""
    rate = limiter()
    item = _chat_item()
    if not rate.hit(item, "user", str(user_id)):
        stats = rate.get_window_stats(item, "user", str(user_id))
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


def chat_turns_left(user_id: uuid.UUID) -> tuple[int, int]:
    """(turns allowed per minute, turns left in the current window) for this user."""
    item = _chat_item()
    stats = limiter().get_window_stats(item, "user", str(user_id))
    return item.amount, max(0, stats.remaining)


def clear_user_limits(*, user_id: uuid.UUID, email: str) -> None:
    """Remove this user's rate-limit keys (chat turns, sign-in attempts by email); privacy deletion.

    The counts of attempts at the email from one address are keyed by a hash of both, which cannot
    be found from the email alone: they expire with their window (``signin_window_s``).
    """
    rate = limiter()
    rate.clear(_chat_item(), "user", str(user_id))
    rate.clear(_signin_item(), "email", _digest(email))
    rate.clear(_signin_email_item(), "email_all", _digest(email))
