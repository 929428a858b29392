"""Feedback on answers: the user's thumbs up or down, with an optional short comment, stored on the run.

The judgement lives in three columns of the run it judges (``feedback`` +1/-1, ``feedback_comment``,
``feedback_at``, migration 0011), so it is exported and deleted with the run and counted by the
prompt-version figures (``core.analytics``) of the prompt that produced the answer. Only the run's
owner can write it (C1, C3): the update is filtered by the user's id, and on PostgreSQL row-level
security and the column privileges of ``advisor_app`` hold the same line.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import update

from core.db import NotFound, user_session
from models import AgentRun
from models.schemas import FeedbackIn
from models.types import utcnow

AGENT_RUNS = AgentRun.__table__  # type: ignore[attr-defined]


def set_feedback(*, user_id: uuid.UUID, data: FeedbackIn, now: datetime | None = None) -> None:
    """Record the user's rating and comment on one of their finished runs, or clear both (rating
    None). ``NotFound`` for a run that is not the user's, or is still being answered."""
    rated = data.rating is not None
    values = {
        "feedback": data.rating,
        "feedback_comment": (data.comment or None) if rated else None,
        "feedback_at": (now or utcnow()) if rated else None,
    }
    r = AGENT_RUNS.c
    statement = (
        update(AGENT_RUNS)
        .where(r.id == data.run_id, r.user_id == user_id, r.status != "pending")
        .values(**values)
    )
    with user_session(user_id) as session:
        changed = int(getattr(session.execute(statement), "rowcount", 0) or 0)
    if changed != 1:
        raise NotFound("answer not found")
