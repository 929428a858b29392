"""The conversation aggregate: ``conversations`` and their turns, ``agent_runs``."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Index, Numeric, SmallInteger, Text, text
from sqlmodel import Field, SQLModel

from models.types import JSONType, UTCDateTime, utcnow

RUN_STATUSES = ("pending", "ok", "error", "interrupted")
# Columns the analytics aggregates read: carried in the indexes so PostgreSQL answers from the index.
_STATS = ["provider", "model", "status", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "ttft_ms",
          "fallback_from", "cached_input_tokens", "cache_write_tokens", "error_code"]
# Columns the prompt-version figures read (migration 0016): an index of their own, so the other
# figures keep scanning their narrower ones.
_VERSIONS = ["provider", "model", "status", "input_tokens", "output_tokens", "cached_input_tokens",
             "cache_write_tokens", "cost_usd", "prompt_sha256", "atom_versions", "feedback", "superseded_by"]
_PENDING = text("status = 'pending'")


class Conversation(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_user_id_created_at", "user_id", "created_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    title: str = Field(default="New conversation", max_length=120)
    agent: str = Field(default="general", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AgentRun(SQLModel, table=True):
    __tablename__ = "agent_runs"
    __table_args__ = (
        Index("ix_agent_runs_user_id_created_at", "user_id", "created_at",
              postgresql_include=["conversation_id", *_STATS]),
        Index("ix_agent_runs_created_at", "created_at", postgresql_include=["user_id", *_STATS]),
        Index("ix_agent_runs_conversation_id_created_at", "conversation_id", "created_at"),
        Index("ix_agent_runs_versions_user_id_created_at", "user_id", "created_at", postgresql_include=_VERSIONS),
        Index("ix_agent_runs_versions_created_at", "created_at", postgresql_include=["user_id", *_VERSIONS]),
        # the sweep of runs left by a stopped process (core.run_leases): only pending runs are in it
        Index("ix_agent_runs_pending_heartbeat", "heartbeat_at", postgresql_where=_PENDING, sqlite_where=_PENDING),
        CheckConstraint(
            "status in ('pending', 'ok', 'error', 'interrupted')", name="ck_agent_runs_status"
        ),
        CheckConstraint("feedback IN (-1, 1)", name="ck_agent_runs_feedback"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    conversation_id: uuid.UUID = Field(foreign_key="conversations.id", ondelete="CASCADE")
    agent: str = Field(default="general", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    user_message: str = Field(sa_type=Text)
    output: str = Field(default="", sa_type=Text)
    status: str = Field(default="pending", max_length=16)
    provider: str | None = Field(default=None, max_length=32)
    model: str | None = Field(default=None, max_length=128)
    fallback_from: str | None = Field(default=None, max_length=128)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: Decimal | None = Field(default=None, sa_type=Numeric(14, 8))
    ttft_ms: int | None = None
    latency_ms: int | None = None
    prompt_sha256: str | None = Field(default=None, max_length=64)
    atom_versions: list[Any] | None = Field(default=None, sa_type=JSONType)
    request_id: str = Field(default="", max_length=32)
    error_code: str | None = Field(default=None, max_length=32)
    # the run that replaced this one (an edit or a regeneration); NULL for the latest version
    superseded_by: uuid.UUID | None = None
    feedback: int | None = Field(default=None, sa_type=SmallInteger)  # +1 thumbs up, -1 thumbs down
    feedback_comment: str | None = Field(default=None, sa_type=Text)
    feedback_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # written while the turn is live; a pending run with a stale heartbeat was left by a dead process
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
