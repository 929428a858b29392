"""Conversations and their history: every function is scoped to one user (C1, C3)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Integer, String, Uuid, and_, bindparam, column, or_, text
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from core.db import NotFound, user_session
from models import AgentRun, Conversation
from models.schemas import MAX_TITLE, ConversationIn, RenameIn
from models.types import UTCDateTime

DEFAULT_TITLE = "New conversation"


@dataclass(frozen=True)
class ConversationSummary:
    id: uuid.UUID
    title: str
    agent: str
    created_at: datetime
    turns: int  # latest versions only: an edit or a regeneration replaces a turn, it adds none
    last_activity: datetime


@dataclass(frozen=True)
class HistoryPage:
    runs: list[AgentRun]  # oldest first
    has_earlier: bool

    @property
    def earlier(self) -> tuple[datetime, uuid.UUID] | None:
        """The cursor for the page before this one: ``history(..., before=page.earlier)``."""
        return (self.runs[0].created_at, self.runs[0].id) if self.has_earlier and self.runs else None


_LIST_SQL = text(
    """
    SELECT c.id, c.title, c.agent, c.created_at, count(r.id) - count(r.superseded_by),
           coalesce(max(r.created_at), c.created_at) AS last_activity
    FROM conversations c LEFT JOIN agent_runs r ON r.conversation_id = c.id AND r.user_id = c.user_id
    WHERE c.user_id = :uid
    GROUP BY c.id, c.title, c.agent, c.created_at
    ORDER BY last_activity DESC
    LIMIT :n
    """
).bindparams(bindparam("uid", type_=Uuid())).columns(
    column("id", Uuid()), column("title", String()), column("agent", String()),
    column("created_at", UTCDateTime()), column("turns", Integer()), column("last_activity", UTCDateTime()),
)


def _owned(user_id: uuid.UUID, conversation_id: uuid.UUID) -> SelectOfScalar[Conversation]:
    return select(Conversation).where(Conversation.id == conversation_id, Conversation.user_id == user_id)


def create_conversation(*, user_id: uuid.UUID, data: ConversationIn) -> Conversation:
    conv = Conversation(user_id=user_id, title=data.title, agent=data.agent)
    with user_session(user_id) as s:
        s.add(conv)
    return conv


def _owned_or_404(session: Session, user_id: uuid.UUID, conversation_id: uuid.UUID) -> Conversation:
    conv = session.exec(_owned(user_id, conversation_id)).first()
    if conv is None:
        raise NotFound("conversation not found")
    return conv


def get_conversation(*, user_id: uuid.UUID, conversation_id: uuid.UUID) -> Conversation:
    with user_session(user_id) as s:
        return _owned_or_404(s, user_id, conversation_id)


def list_conversations(*, user_id: uuid.UUID, limit: int = 100) -> list[ConversationSummary]:
    """The user's conversations, most recently active first."""
    with user_session(user_id) as s:
        rows = s.execute(_LIST_SQL, {"uid": user_id, "n": limit}).all()
    return [ConversationSummary(id=r[0], title=r[1], agent=r[2], created_at=r[3], turns=r[4],
                                last_activity=r[5]) for r in rows]


def rename_conversation(*, user_id: uuid.UUID, data: RenameIn) -> Conversation:
    with user_session(user_id) as s:
        conv = _owned_or_404(s, user_id, data.conversation_id)
        conv.title = data.title
        s.add(conv)
    return conv


def delete_conversation(*, user_id: uuid.UUID, conversation_id: uuid.UUID) -> None:
    """Delete the conversation and every run of it (earlier versions too). What the runs used stays
    counted in the user's quota: the usage counters are kept apart from the runs and never lowered."""
    with user_session(user_id) as s:
        s.delete(_owned_or_404(s, user_id, conversation_id))


def history(
    *,
    user_id: uuid.UUID,
    conversation_id: uuid.UUID,
    limit: int = 50,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> HistoryPage:
    """The newest ``limit`` turns, oldest first; paging back: ``before=page.earlier``.

    The order is (created_at, id), newest first, and the cursor is that pair: two runs with the
    same timestamp on either side of a page boundary are neither skipped nor repeated.
    """
    stmt = select(AgentRun).where(AgentRun.user_id == user_id, AgentRun.conversation_id == conversation_id)
    if before is not None:
        at, run_id = before
        stmt = stmt.where(
            or_(col(AgentRun.created_at) < at, and_(col(AgentRun.created_at) == at, col(AgentRun.id) < run_id))
        )
    stmt = stmt.order_by(col(AgentRun.created_at).desc(), col(AgentRun.id).desc()).limit(limit + 1)
    with user_session(user_id) as s:
        conv = s.exec(
            select(Conversation.id).where(Conversation.id == conversation_id, Conversation.user_id == user_id)
        ).first()
        if conv is None:
            raise NotFound("conversation not found")
        runs = list(s.exec(stmt).all())
    has_earlier = len(runs) > limit
    return HistoryPage(runs=list(reversed(runs[:limit])), has_earlier=has_earlier)


def get_run(*, user_id: uuid.UUID, run_id: uuid.UUID) -> AgentRun:
    """One of the user's runs as stored now (e.g. a turn the page has just shown, once finished)."""
    with user_session(user_id) as s:
        run = s.exec(select(AgentRun).where(AgentRun.id == run_id, AgentRun.user_id == user_id)).first()
    if run is None:
        raise NotFound("run not found")
    return run


def title_from_message(text: str) -> str:
    """A conversation title made from its first message (no LLM call): its start, whitespace
    collapsed to single spaces, cut at a word boundary near 60 characters with "…"."""
    line = " ".join(text.strip().split())
    limit = min(60, MAX_TITLE)
    if len(line) <= limit:
        return line or DEFAULT_TITLE
    cut = line[:limit].rsplit(" ", 1)[0] or line[:limit]
    return (cut.rstrip(" ,.;:-") or line[:limit]) + "…"  # a message of only punctuation keeps some
