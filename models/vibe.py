"""The vibe aggregate: ``vibe_configs`` (output-style sliders, several per user, one active)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow

SLIDERS = ("playfulness", "revenue_focus", "technical_depth", "brevity", "formality")


class VibeConfig(SQLModel, table=True):
    __tablename__ = "vibe_configs"
    __table_args__ = (
        UniqueConstraint("user_id", "name", name="uq_vibe_configs_user_name"),
        Index(
            "uq_vibe_configs_one_active",
            "user_id",
            unique=True,
            sqlite_where=text("is_active"),
            postgresql_where=text("is_active"),
        ),
        *(CheckConstraint(f"{s} between 0 and 10", name=f"ck_vibe_configs_{s}") for s in SLIDERS),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=60)
    playfulness: int = Field(default=3, ge=0, le=10)
    revenue_focus: int = Field(default=5, ge=0, le=10)
    technical_depth: int = Field(default=6, ge=0, le=10)
    brevity: int = Field(default=5, ge=0, le=10)
    formality: int = Field(default=5, ge=0, le=10)
    is_active: bool = Field(default=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
