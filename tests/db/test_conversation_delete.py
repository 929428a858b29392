"""Deleting a conversation from the chat page (issue 19): the conversation and all its runs (earlier
versions included) go; what they used stays counted in the quota; another user's is not found."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import select

from core.conversations import delete_conversation, list_conversations
from core.db import NotFound, system_session
from core.quotas import usage_summary
from models import AgentRun, Conversation
from models.types import utcnow
from tests.factories import make_user


def _conversation(user_id: uuid.UUID, tokens: int) -> uuid.UUID:
    conv = Conversation(user_id=user_id, title="to delete", agent="general")
    now = utcnow()
    replaced = AgentRun(user_id=user_id, conversation_id=conv.id, created_at=now - timedelta(seconds=2),
                        user_message="q", output="first version", status="ok", input_tokens=tokens, output_tokens=0)
    latest = AgentRun(user_id=user_id, conversation_id=conv.id, created_at=now - timedelta(seconds=1),
                      user_message="q", output="regenerated", status="ok", input_tokens=tokens, output_tokens=0)
    replaced.superseded_by = latest.id
    with system_session() as s:  # finished runs: usage is counted by the database's trigger
        s.add(conv)
        s.flush()
        s.add_all([replaced, latest])
    return conv.id


def _left(conv_id: uuid.UUID) -> tuple[int, int]:
    with system_session() as s:
        convs = s.exec(select(Conversation).where(Conversation.id == conv_id)).all()
        runs = s.exec(select(AgentRun).where(AgentRun.conversation_id == conv_id)).all()
    return len(convs), len(runs)


def test_deleting_a_conversation_removes_its_runs_and_keeps_the_quota_usage(any_db_url: str):
    user = make_user()
    keep = _conversation(user, 100)
    gone = _conversation(user, 250)
    assert {c.id: c.turns for c in list_conversations(user_id=user)} == {keep: 1, gone: 1}  # versions: 1 turn
    used = usage_summary(user_id=user).tokens_today
    assert used == 2 * 100 + 2 * 250  # every version used tokens

    delete_conversation(user_id=user, conversation_id=gone)

    assert _left(gone) == (0, 0) and _left(keep) == (1, 2)
    assert [c.id for c in list_conversations(user_id=user)] == [keep]
    assert usage_summary(user_id=user).tokens_today == used  # deleting history does not refund quota


def test_another_users_conversation_cannot_be_deleted(any_db_url: str):
    owner, intruder = make_user(), make_user()
    conv = _conversation(owner, 10)
    with pytest.raises(NotFound):
        delete_conversation(user_id=intruder, conversation_id=conv)
    assert _left(conv) == (1, 2)
