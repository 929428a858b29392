"""Local sign-in sessions: a random token in the browser, only its hash on the server (C23).

A successful local sign-in calls ``create_session``: it draws a token of 256 random bits
(``secrets.token_urlsafe(32)``), stores its SHA-256 (``token_hash``) in ``user_sessions`` with an
expiry ``ADVISOR_SESSION_DAYS`` days ahead, and returns the token, which the HTTP layer puts in an
HttpOnly cookie (``core.auth_routes``). The token itself is never stored or logged: a copy of the
table cannot be replayed as a cookie.

``validate_session`` is called on every script run with the cookie's token. It answers from a
per-process cache for at most ``CACHE_SECONDS``; otherwise it looks the hash up (one indexed read)
and, when the session was last used more than ``TOUCH_SECONDS`` ago, slides its expiry forward.
An unknown, revoked or expired token gives None, so a revoked session is refused at its next
interaction, in this process at once and in any other within ``CACHE_SECONDS``.

``revoke_session`` (sign-out), ``revoke_user_sessions`` ("sign out everywhere", a password change;
optionally sparing the caller's own session) delete rows: a revoked token has nothing left to match.
``forget_expired_sessions`` deletes expired rows (at start, and as expired tokens are presented).

Sessions are written and looked up as ``advisor_system`` (there is no user yet when a token
arrives); a user session may only read and delete its own rows (migration 0014).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic
from typing import Final

from sqlalchemy import delete, update
from sqlmodel import col, select

from core.db import system_session, user_session
from core.settings import get_settings
from models import UserSession
from models.session import MAX_USER_AGENT
from models.types import utcnow

__all__ = [
    "CACHE_SECONDS",
    "SESSION_COOKIE",
    "NewSession",
    "SessionInfo",
    "ValidSession",
    "clear_validation_cache",
    "create_session",
    "forget_expired_sessions",
    "list_user_sessions",
    "revoke_session",
    "revoke_user_sessions",
    "session_lifetime",
    "token_hash",
    "validate_session",
]

log = logging.getLogger("advisor.sessions")

SESSION_COOKIE: Final = "advisor_session"
TOKEN_BYTES: Final = 32  # 256 random bits
MAX_TOKEN_CHARS: Final = 128  # a longer cookie value is no token of ours: refused without a lookup
CACHE_SECONDS: Final = 2.0  # how long a validation is trusted in this process
TOUCH_SECONDS: Final = 60.0  # how often a session in use has its expiry slid forward
MAX_CACHE_ENTRIES: Final = 10_000


@dataclass(frozen=True)
class NewSession:
    """A session just created: the token goes to the browser (once), never to storage or logs."""

    id: uuid.UUID
    user_id: uuid.UUID
    token: str
    expires_at: datetime

    def __repr__(self) -> str:  # the token never reaches a log line through repr()
        return f"NewSession(id={self.id}, user_id={self.user_id}, expires_at={self.expires_at.isoformat()})"


@dataclass(frozen=True)
class ValidSession:
    """A presented token that matched a live session."""

    id: uuid.UUID
    user_id: uuid.UUID
    token_hash: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionInfo:
    """One of a user's sessions, as the account page lists them."""

    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    user_agent: str


def token_hash(token: str) -> str:
    """SHA-256 (hex) of a session token: what ``user_sessions.token_hash`` holds."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def session_lifetime() -> timedelta:
    """How long a session lives after its last use (``ADVISOR_SESSION_DAYS``)."""
    return timedelta(days=get_settings().session_days)


def _trim_user_agent(user_agent: str | None) -> str:
    text = "".join(ch for ch in (user_agent or "") if ch.isprintable())
    return text[:MAX_USER_AGENT]


# ------------------------------------------------------------------------------------------------
# the per-process validation cache: token hash -> (monotonic deadline, session)
# ------------------------------------------------------------------------------------------------
_cache_lock = threading.Lock()
_cache: dict[str, tuple[float, ValidSession]] = {}


def _cached(digest: str, now: datetime) -> ValidSession | None:
    with _cache_lock:
        entry = _cache.get(digest)
        if entry is None:
            return None
        deadline, found = entry
        if deadline < monotonic() or found.expires_at <= now:
            del _cache[digest]
            return None
        return found


def _remember(found: ValidSession) -> None:
    with _cache_lock:
        if len(_cache) >= MAX_CACHE_ENTRIES:
            _cache.clear()
        _cache[found.token_hash] = (monotonic() + CACHE_SECONDS, found)


def clear_validation_cache() -> None:
    """Forget every cached validation (tests; the next check of each token reads the database)."""
    with _cache_lock:
        _cache.clear()


def _forget_cached(*, digest: str | None = None, user_id: uuid.UUID | None = None) -> None:
    with _cache_lock:
        if digest is not None:
            _cache.pop(digest, None)
        if user_id is not None:
            for key in [k for k, (_, s) in _cache.items() if s.user_id == user_id]:
                del _cache[key]


# ------------------------------------------------------------------------------------------------
# the session lifecycle
# ------------------------------------------------------------------------------------------------
def create_session(user_id: uuid.UUID, *, user_agent: str | None = None, now: datetime | None = None) -> NewSession:
    """Start a session for ``user_id``; returns the token to hand to the browser."""
    now = now or utcnow()
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = UserSession(
        user_id=user_id,
        token_hash=token_hash(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + session_lifetime(),
        user_agent=_trim_user_agent(user_agent),
    )
    with system_session() as s:
        s.add(row)
    log.info("session started id=%s user=%s", row.id, user_id)
    return NewSession(id=row.id, user_id=user_id, token=token, expires_at=row.expires_at)


def validate_session(token: str | None, *, now: datetime | None = None) -> ValidSession | None:
    """The live session of ``token``, or None (no token, unknown, revoked or expired).

    Slides the expiry forward (at most once per ``TOUCH_SECONDS``); an expired row found is deleted.
    """
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    now = now or utcnow()
    digest = token_hash(token)
    hit = _cached(digest, now)
    if hit is not None:
        return hit
    with system_session() as s:
        row = s.exec(select(UserSession).where(col(UserSession.token_hash) == digest)).first()
        if row is None:
            return None
        if row.expires_at <= now:
            s.execute(delete(UserSession).where(col(UserSession.id) == row.id))
            log.info("session expired id=%s", row.id)
            return None
        expires_at = row.expires_at
        if (now - row.last_seen_at).total_seconds() >= TOUCH_SECONDS:
            expires_at = now + session_lifetime()
            s.execute(
                update(UserSession)
                .where(col(UserSession.id) == row.id)
                .values(last_seen_at=now, expires_at=expires_at)
            )
        found = ValidSession(id=row.id, user_id=row.user_id, token_hash=digest, expires_at=expires_at)
    _remember(found)
    return found


def revoke_session(token: str | None) -> bool:
    """End the session of ``token`` (sign-out). True when a session was ended."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return False
    digest = token_hash(token)
    _forget_cached(digest=digest)
    with system_session() as s:
        ended = s.connection().execute(delete(UserSession).where(col(UserSession.token_hash) == digest)).rowcount
    if ended:
        log.info("session ended by sign-out")
    return bool(ended)


def revoke_user_sessions(user_id: uuid.UUID, *, except_token_hash: str | None = None) -> int:
    """End every session of ``user_id`` ("sign out everywhere", a password change), except the one
    whose token hash is ``except_token_hash`` when given. Returns how many were ended."""
    stmt = delete(UserSession).where(col(UserSession.user_id) == user_id)
    if except_token_hash is not None:
        stmt = stmt.where(col(UserSession.token_hash) != except_token_hash)
    with system_session() as s:
        ended = s.connection().execute(stmt).rowcount
    _forget_cached(user_id=user_id)
    log.info("sessions ended user=%s count=%d", user_id, ended)
    return ended


def forget_expired_sessions(*, now: datetime | None = None) -> int:
    """Delete every expired session (run at start). Returns how many."""
    with system_session() as s:
        stmt = delete(UserSession).where(col(UserSession.expires_at) <= (now or utcnow()))
        return s.connection().execute(stmt).rowcount


def list_user_sessions(user_id: uuid.UUID, *, now: datetime | None = None) -> list[SessionInfo]:
    """The live sessions of ``user_id``, most recently used first (read in the user's own session)."""
    with user_session(user_id) as s:
        rows = s.exec(
            select(UserSession)
            .where(col(UserSession.user_id) == user_id, col(UserSession.expires_at) > (now or utcnow()))
            .order_by(col(UserSession.last_seen_at).desc())
        ).all()
        return [SessionInfo(id=r.id, created_at=r.created_at, last_seen_at=r.last_seen_at,
                            expires_at=r.expires_at, user_agent=r.user_agent) for r in rows]
