"""Versions of a turn: an edited message or a regenerated answer replaces the last run.

Editing the last message and regenerating the last answer both make a **new run**; the run it
replaces stays in the database (with its usage, in analytics and in the export) and records the new
run's id in ``superseded_by``. A run whose ``superseded_by`` is NULL is the latest version of its
turn. Only the last latest run of a conversation can be replaced: replacing an earlier one would
leave later answers built on a history that no longer exists.

- ``supersede_last_run``: in the new turn's accept transaction, before its history is read, marks
  the replaced run; so the history sent to the model (``LATEST``) already leaves it out;
- ``LATEST``: the filter for "latest versions only" (the history sent to the model);
- ``group_versions``: a conversation's runs as turns, each its latest run with its earlier versions
  (what the chat shows: the latest, and an "Earlier versions" expander).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from models import AgentRun

__all__ = ["LATEST", "NotReplaceable", "TurnVersions", "group_versions", "supersede_last_run"]

# The latest version of each turn: what the model is sent as history and the chat shows first.
LATEST = col(AgentRun.superseded_by).is_(None)


class NotReplaceable(ValueError):
    """The run is not the last answer of its conversation (or not the user's): nothing was stored."""

    def __init__(self) -> None:
        super().__init__("Only the last message of a conversation can be edited or its answer regenerated.")
        self.message = str(self)


def supersede_last_run(
    session: Session,
    *,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID,
    replaced_id: uuid.UUID,
    new_id: uuid.UUID,
) -> None:
    """Mark ``replaced_id`` as superseded by ``new_id``, in the caller's transaction.

    One conditional UPDATE: the run must be the user's, in this conversation, a latest version, and
    no other latest run of the conversation may come after it (by ``(created_at, id)``, the order
    the chat shows). Otherwise ``NotReplaceable`` is raised and the caller's transaction (with the
    new run) is rolled back. Two replacements of the same run at once: the second finds it already
    superseded and is refused.
    """
    later = aliased(AgentRun)
    replaced = AgentRun
    after = or_(
        col(later.created_at) > col(replaced.created_at),
        and_(col(later.created_at) == col(replaced.created_at), col(later.id) > col(replaced.id)),
    )
    newer_latest = exists(
        select(col(later.id)).where(
            col(later.conversation_id) == conversation_id,
            col(later.user_id) == user_id,
            col(later.superseded_by).is_(None),
            col(later.id) != new_id,
            after,
        )
    )
    result = session.execute(
        update(AgentRun)
        .where(
            col(AgentRun.id) == replaced_id,
            col(AgentRun.user_id) == user_id,
            col(AgentRun.conversation_id) == conversation_id,
            LATEST,
            ~newer_latest,
        )
        .values(superseded_by=new_id)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise NotReplaceable()


@dataclass(frozen=True)
class TurnVersions:
    """One turn as the chat shows it: its latest run and the runs it replaced, oldest first."""

    run: AgentRun
    earlier: tuple[AgentRun, ...] = ()


def group_versions(runs: Sequence[AgentRun]) -> list[TurnVersions]:
    """``runs`` (oldest first) as turns: each latest run with its earlier versions.

    A superseded run is grouped under the latest run its ``superseded_by`` chain ends at. A chain
    that ends outside ``runs`` (its latest version is not in this page) is shown as a turn of its
    own rather than hidden.
    """
    by_id = {run.id: run for run in runs}

    def final(run: AgentRun) -> AgentRun:
        seen: set[uuid.UUID] = set()
        while run.superseded_by is not None and run.superseded_by in by_id and run.id not in seen:
            seen.add(run.id)
            run = by_id[run.superseded_by]
        return run

    earlier: dict[uuid.UUID, list[AgentRun]] = {}
    heads: list[AgentRun] = []
    for run in runs:
        head = final(run)
        if head is run:
            heads.append(run)
        else:
            earlier.setdefault(head.id, []).append(run)
    return [TurnVersions(run=head, earlier=tuple(earlier.get(head.id, ()))) for head in heads]
