"""``password_resets``: one-time codes an admin issued to reset a user's password (``core.reset_codes``).

The code is shown once to the admin, who hands it over; the row holds only its SHA-256 (hex). A code
signs its user in once, before ``expires_at``, and only while ``users.password_reset_required`` is
set; redeeming it deletes the row. Deleted with the user (privacy deletion is catalogue-driven) and
part of their export.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class PasswordReset(SQLModel, table=True):
    __tablename__ = "password_resets"
    __table_args__ = (
        UniqueConstraint("code_hash", name="uq_password_resets_code_hash"),
        Index("ix_password_resets_user_id", "user_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
