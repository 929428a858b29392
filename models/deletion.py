"""``deletion_records``: proof that a user was deleted, holding no personal data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from models.types import JSONType, UTCDateTime, utcnow


class DeletionRecord(SQLModel, table=True):
    __tablename__ = "deletion_records"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    subject_hash: str = Field(max_length=64, index=True)
    deleted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    row_counts: dict[str, Any] = Field(default_factory=dict, sa_type=JSONType)
