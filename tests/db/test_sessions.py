"""Local sign-in sessions (core.sessions, C23): only a hash stored, sliding expiry, revocation that
takes effect at once, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from core.db import system_session
from core.sessions import (
    CACHE_SECONDS,
    TOUCH_SECONDS,
    clear_validation_cache,
    create_session,
    forget_expired_sessions,
    list_user_sessions,
    revoke_session,
    revoke_user_sessions,
    token_hash,
    validate_session,
)
from models import UserSession
from models.types import utcnow
from tests.factories import make_user


def _rows(user_id: uuid.UUID) -> list[dict[str, object]]:
    with system_session() as s:
        return [r.model_dump() for r in s.exec(select(UserSession).where(UserSession.user_id == user_id))]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_validation_cache()


def test_token_is_random_256_bits_and_only_its_hash_is_stored(any_db_url: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    user = make_user()
    first = create_session(user, user_agent="Mozilla/5.0\x00\nTest")
    second = create_session(user)
    assert first.token != second.token
    assert len(first.token) >= 43  # 32 bytes in URL-safe base64
    rows = _rows(user)
    assert len(rows) == 2
    stored = " ".join(str(v) for row in rows for v in row.values())
    assert first.token not in stored and second.token not in stored
    assert {r["token_hash"] for r in rows} == {token_hash(first.token), token_hash(second.token)}
    assert any(r["user_agent"] == "Mozilla/5.0Test" for r in rows)
    assert first.token not in caplog.text and first.token not in repr(first)


def test_validate_returns_the_user_and_refuses_unknown_tokens(any_db_url: str) -> None:
    user = make_user()
    new = create_session(user)
    found = validate_session(new.token)
    assert found is not None and found.user_id == user and found.id == new.id
    assert validate_session(None) is None
    assert validate_session("") is None
    assert validate_session(new.token + "x") is None
    assert validate_session("x" * 10_000) is None


def test_default_lifetime_is_14_days_and_the_setting_changes_it(any_db_url: str, set_env) -> None:
    now = utcnow()
    assert create_session(make_user(), now=now).expires_at == now + timedelta(days=14)
    set_env(SESSION_DAYS="3")
    assert create_session(make_user(), now=now).expires_at == now + timedelta(days=3)


def test_expiry_slides_with_use(any_db_url: str) -> None:
    start = utcnow()
    new = create_session(make_user(), now=start)
    later = start + timedelta(days=10)
    found = validate_session(new.token, now=later)
    assert found is not None and found.expires_at == later + timedelta(days=14)
    clear_validation_cache()
    # used again within TOUCH_SECONDS: no write, the expiry stays
    again = validate_session(new.token, now=later + timedelta(seconds=TOUCH_SECONDS / 2))
    assert again is not None and again.expires_at == later + timedelta(days=14)
    # still valid 20 days after it was created: the expiry moved
    clear_validation_cache()
    assert validate_session(new.token, now=start + timedelta(days=20)) is not None


def test_an_expired_token_is_refused_and_its_row_deleted(any_db_url: str) -> None:
    start = utcnow()
    user = make_user()
    new = create_session(user, now=start)
    assert validate_session(new.token, now=start + timedelta(days=14, seconds=1)) is None
    assert _rows(user) == []


def test_expiry_beats_the_cache(any_db_url: str) -> None:
    start = utcnow()
    new = create_session(make_user(), now=start)
    assert validate_session(new.token, now=start) is not None
    assert validate_session(new.token, now=start + timedelta(days=15)) is None


def test_sign_out_revokes_the_token_at_once(any_db_url: str) -> None:
    user = make_user()
    new, other = create_session(user), create_session(user)
    assert validate_session(new.token) is not None  # now cached
    assert revoke_session(new.token) is True
    assert validate_session(new.token) is None
    assert revoke_session(new.token) is False
    assert validate_session(other.token) is not None


def test_revocation_elsewhere_is_seen_within_the_cache_time(any_db_url: str, monkeypatch) -> None:
    """Another process revokes (a row deleted directly): this process refuses the token once its
    cached answer is older than CACHE_SECONDS."""
    user = make_user()
    new = create_session(user)
    clock = [1000.0]
    monkeypatch.setattr("core.sessions.monotonic", lambda: clock[0])
    assert validate_session(new.token) is not None
    with system_session() as s:
        s.execute(text("DELETE FROM user_sessions"))
    assert validate_session(new.token) is not None  # the cached answer, for a moment
    clock[0] += CACHE_SECONDS + 0.01
    assert validate_session(new.token) is None


def test_sign_out_everywhere_spares_only_the_named_session(any_db_url: str) -> None:
    user, other_user = make_user(), make_user()
    keep, drop1, drop2 = (create_session(user) for _ in range(3))
    theirs = create_session(other_user)
    for s in (keep, drop1, drop2, theirs):
        assert validate_session(s.token) is not None
    assert revoke_user_sessions(user, except_token_hash=token_hash(keep.token)) == 2
    assert validate_session(keep.token) is not None
    assert validate_session(drop1.token) is None and validate_session(drop2.token) is None
    assert validate_session(theirs.token) is not None
    assert revoke_user_sessions(user) == 1
    assert validate_session(keep.token) is None


def test_forget_expired_sessions(any_db_url: str) -> None:
    start = utcnow()
    user = make_user()
    create_session(user, now=start - timedelta(days=20))
    live = create_session(user, now=start)
    assert forget_expired_sessions(now=start) == 1
    assert [r["token_hash"] for r in _rows(user)] == [token_hash(live.token)]


def test_list_user_sessions_shows_only_own_live_sessions(any_db_url: str) -> None:
    user, other = make_user(), make_user()
    create_session(user, user_agent="browser one")
    create_session(user, user_agent="browser two", now=utcnow() - timedelta(days=30))  # expired
    create_session(other, user_agent="theirs")
    listed = list_user_sessions(user)
    assert [s.user_agent for s in listed] == ["browser one"]


def test_deleting_the_user_ends_their_sessions(any_db_url: str) -> None:
    from core.deletion import delete_user

    user = make_user()
    make_user(is_admin=True)  # the user is not the only admin
    new = create_session(user)
    assert validate_session(new.token) is not None
    receipt = delete_user(user_id=user)
    assert receipt.row_counts["user_sessions"] == 1
    clear_validation_cache()  # another process: no cached answer
    assert validate_session(new.token) is None
