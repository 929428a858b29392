"""The row of a chat turn (``agent_runs``): stored pending, checkpointed, finished, swept.

A turn's row lives through these steps, each a plain function over ``core.db`` sessions:

- ``insert_pending_run``: the user's message, status ``pending``, in the caller's transaction (the
  chat turn commits it before any provider is called);
- ``checkpoint_output``: the partial answer while it streams, with who is answering and the run's
  heartbeat, so a process that dies mid-answer leaves most of it behind;
- ``finish_run``: output, usage, cost, timings, prompt record and status, once the stream has
  ended; a database error is retried for a few seconds (a restart), then left to the sweep;
- ``recent_exchanges``: the answered turns of a conversation, as the history sent to the model.

A run left ``pending`` by a process that stopped is closed by the sweep of ``core.run_leases``
(its heartbeat went stale: the insert, each checkpoint and the process's heartbeat thread write it),
``interrupted`` with the output of its last checkpoint.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from core.db import user_session
from core.providers.base import ChatMessage
from core.run_versions import LATEST
from models import AgentRun
from models.types import utcnow

__all__ = [
    "RunFinish",
    "checkpoint_output",
    "finish_run",
    "insert_pending_run",
    "recent_exchanges",
]

log = logging.getLogger("advisor.agent_runs")

FINISH_ATTEMPTS = 6  # with the backoff below, the last write survives a database restart of a few seconds
ANSWERED = ("ok", "interrupted")  # runs whose exchange is part of the conversation's history


@dataclass(frozen=True)
class RunFinish:
    """The columns a turn's end writes to its row (``None``: unknown, stored as NULL)."""

    status: str
    output: str
    provider: str | None = None
    model: str | None = None
    fallback_from: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: Decimal | None = None
    ttft_ms: int | None = None
    latency_ms: int | None = None
    prompt_sha256: str | None = None
    atom_versions: list[Any] | None = None
    error_code: str | None = None


def insert_pending_run(
    session: Session,
    *,
    run_id: uuid.UUID,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID,
    agent: str,
    message: str,
    request_id: str,
    created_at: datetime,
) -> None:
    """Add the turn's row (the user's message, status ``pending``, its first heartbeat) to
    ``session``'s transaction."""
    session.add(AgentRun(id=run_id, user_id=user_id, conversation_id=conversation_id, agent=agent,
                         created_at=created_at, user_message=message, output="", status="pending",
                         request_id=request_id, heartbeat_at=created_at))


def recent_exchanges(
    session: Session, *, user_id: uuid.UUID, conversation_id: uuid.UUID, turns: int
) -> list[ChatMessage]:
    """The last ``turns`` answered exchanges of the conversation, oldest first, as chat messages
    (a turn without output -- an error, or cut before its first token -- is left out; of an edited or
    regenerated turn, only its latest version: ``core.run_versions.LATEST``)."""
    if turns <= 0:
        return []
    rows = session.exec(
        select(AgentRun.user_message, AgentRun.output)
        .where(col(AgentRun.conversation_id) == conversation_id, col(AgentRun.user_id) == user_id,
               col(AgentRun.status).in_(ANSWERED), LATEST)
        .order_by(col(AgentRun.created_at).desc())
        .limit(turns)
    ).all()
    history: list[ChatMessage] = []
    for user_message, output in reversed(rows):
        if output:
            history += [ChatMessage("user", user_message), ChatMessage("assistant", output)]
    return history


def checkpoint_output(
    *, user_id: uuid.UUID, run_id: uuid.UUID, output: str, provider: str | None = None, model: str | None = None
) -> None:
    """Store the partial answer of a live run, the provider and model answering, and the run's
    heartbeat (its lease, ``core.run_leases``). A database error is logged, not raised: the answer
    goes on streaming, and the next checkpoint or the finish writes it."""
    try:
        with user_session(user_id) as s:
            s.execute(
                update(AgentRun)
                .where(col(AgentRun.id) == run_id, col(AgentRun.user_id) == user_id,
                       col(AgentRun.status) == "pending")
                .values(output=output, provider=provider, model=model, heartbeat_at=utcnow())
            )
    except DBAPIError:
        log.warning("could not checkpoint partial output of run %s; the finish will write it", run_id)


def finish_run(*, user_id: uuid.UUID, run_id: uuid.UUID, finish: RunFinish) -> bool:
    """Write the end of a turn to its row; False when the database stayed unreachable.

    The write is whole or not at all, so a retry after an unacknowledged commit writes the same
    values again. It does not depend on the row's status: a run the recovery sweep closed while
    its process was still answering gets its answer recorded.
    """
    delay = 0.25
    for attempt in range(1, FINISH_ATTEMPTS + 1):
        try:
            with user_session(user_id) as s:
                s.execute(
                    update(AgentRun)
                    .where(col(AgentRun.id) == run_id, col(AgentRun.user_id) == user_id)
                    .values(**asdict(finish))
                )
            return True
        except DBAPIError as exc:
            if attempt == FINISH_ATTEMPTS:
                log.error("could not record the end of run %s (%s); the recovery sweep will close it",
                          run_id, type(exc).__name__)
                return False
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
    return False
