"""The user aggregate: ``users`` and ``user_profiles``."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Numeric
from sqlmodel import Field, SQLModel

from models.types import JSONType, UTCDateTime, utcnow


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("email = lower(email)", name="ck_users_email_lower"),
        CheckConstraint("auth_provider in ('local', 'oidc')", name="ck_users_auth_provider"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    password_hash: str | None = Field(default=None, max_length=255)
    auth_provider: str = Field(default="local", max_length=16)
    oidc_subject: str | None = Field(default=None, max_length=255)
    is_admin: bool = Field(default=False)
    # set by an admin's forced reset: the password no longer signs in, a one-time code does (0017)
    password_reset_required: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    quota_tokens_per_day: int | None = Field(default=None, ge=0)
    quota_cost_per_month_usd: Decimal | None = Field(default=None, ge=0, sa_type=Numeric(12, 4))


class UserProfile(SQLModel, table=True):
    __tablename__ = "user_profiles"

    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    role: str = Field(default="", max_length=80)
    stack: list[str] = Field(default_factory=list, sa_type=JSONType)
    vertical: str = Field(default="", max_length=80)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
