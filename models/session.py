"""``user_sessions``: the server side of a browser's local sign-in (``core.sessions``).

One row per signed-in browser. The browser holds a random token (256 bits) in an HttpOnly cookie;
the row holds only its SHA-256 (hex), so the table's contents cannot be replayed as a cookie. The
expiry slides: each use moves ``expires_at`` to ``ADVISOR_SESSION_DAYS`` after it. Revoking a
session (sign-out, "sign out everywhere", a password change) deletes its row. Deleted with the user
(privacy deletion is catalogue-driven) and part of their export.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow

MAX_USER_AGENT = 200


class UserSession(SQLModel, table=True):
    __tablename__ = "user_sessions"
    __table_args__ = (
        UniqueConstraint("token_hash", name="uq_user_sessions_token_hash"),
        Index("ix_user_sessions_user_id", "user_id"),
        Index("ix_user_sessions_expires_at", "expires_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    token_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    user_agent: str = Field(default="", max_length=MAX_USER_AGENT)
