"""``usage_counters``: what a user has used per UTC day, kept by the database as runs are recorded.

One row per (user, UTC day of the run's ``created_at``): tokens (input, cached input, cache writes
and output) and cost. A trigger on ``agent_runs`` (migration 0005) adds each change of a run's
token counts or cost, so the quota check reads at most 32 small rows instead of summing every run
of the month, and deleting runs (a conversation, say) does not give quota back: usage counts what
was used. Deleted with the user (privacy deletion is catalogue-driven, like every user table).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import BigInteger, Column, Numeric
from sqlmodel import Field, SQLModel


class UsageCounter(SQLModel, table=True):
    __tablename__ = "usage_counters"

    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    day: date = Field(primary_key=True)
    tokens: int = Field(default=0, sa_column=Column(BigInteger(), nullable=False, server_default="0"))
    cost_usd: Decimal = Field(
        default=Decimal(0), sa_column=Column(Numeric(18, 8), nullable=False, server_default="0")
    )
