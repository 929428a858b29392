"""Versions of a turn (issue 19): only the last run of a conversation is replaced, in the user's own
session, and the replaced run stays (core.run_versions)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import col, select

from core.db import system_session, user_session
from core.run_versions import LATEST, NotReplaceable, group_versions, supersede_last_run
from models import AgentRun, Conversation
from models.types import utcnow
from tests.factories import make_user


def _conversation_with_runs(user_id: uuid.UUID, n: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A conversation of ``n`` answered runs a minute apart (written as the system role: finished)."""
    conv = Conversation(user_id=user_id, title="versions", agent="general")
    start = utcnow() - timedelta(hours=1)
    runs = [AgentRun(user_id=user_id, conversation_id=conv.id, created_at=start + timedelta(minutes=i),
                     user_message=f"q{i}", output=f"a{i}", status="ok", request_id=f"r{i}") for i in range(n)]
    with system_session() as s:
        s.add(conv)
        s.flush()
        s.add_all(runs)
    return conv.id, [r.id for r in runs]


def _new_pending(s, user_id: uuid.UUID, conv_id: uuid.UUID, message: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    run = AgentRun(user_id=user_id, conversation_id=conv_id, user_message=message, status="pending")
    s.add(run)
    s.flush()
    return run.id


def _superseded(conv_id: uuid.UUID) -> dict[str, uuid.UUID | None]:
    with system_session() as s:
        return {r.user_message: r.superseded_by for r in s.exec(
            select(AgentRun).where(AgentRun.conversation_id == conv_id)).all()}


def test_the_last_run_is_superseded_by_the_new_one_in_the_same_transaction(any_db_url: str):
    user = make_user()
    conv, [_r0, _r1, last] = _conversation_with_runs(user, 3)
    with user_session(user) as s:
        new = _new_pending(s, user, conv, "q2 edited")
        supersede_last_run(s, user_id=user, conversation_id=conv, replaced_id=last, new_id=new)
        latest = s.exec(select(AgentRun.user_message).where(AgentRun.conversation_id == conv, LATEST)
                        .order_by(col(AgentRun.created_at))).all()
        assert latest == ["q0", "q1", "q2 edited"]  # what a history read in this transaction sees
    assert _superseded(conv) == {"q0": None, "q1": None, "q2": new, "q2 edited": None}


def test_an_earlier_run_cannot_be_replaced_and_nothing_is_stored(any_db_url: str):
    user = make_user()
    conv, [_r0, middle, _last] = _conversation_with_runs(user, 3)
    with pytest.raises(NotReplaceable, match="Only the last message"), user_session(user) as s:
        new = _new_pending(s, user, conv, "rewrite history")
        supersede_last_run(s, user_id=user, conversation_id=conv, replaced_id=middle, new_id=new)
    assert _superseded(conv) == {"q0": None, "q1": None, "q2": None}  # rolled back with the new run


def test_a_superseded_run_cannot_be_replaced_again(any_db_url: str):
    """Two regenerations of the same answer (two tabs): the second is refused."""
    user = make_user()
    conv, [*_, last] = _conversation_with_runs(user, 2)
    with user_session(user) as s:
        first = _new_pending(s, user, conv, "v2")
        supersede_last_run(s, user_id=user, conversation_id=conv, replaced_id=last, new_id=first)
    with pytest.raises(NotReplaceable), user_session(user) as s:
        second = _new_pending(s, user, conv, "v2 again")
        supersede_last_run(s, user_id=user, conversation_id=conv, replaced_id=last, new_id=second)
    with user_session(user) as s:  # the new latest version can be replaced in turn
        third = _new_pending(s, user, conv, "v3")
        supersede_last_run(s, user_id=user, conversation_id=conv, replaced_id=first, new_id=third)
    assert _superseded(conv) == {"q0": None, "q1": first, "v2": third, "v3": None}


def test_another_users_run_or_conversation_is_not_replaceable(any_db_url: str):
    alice, mallory = make_user(), make_user()
    conv, [*_, last] = _conversation_with_runs(alice, 2)
    own_conv, _ = _conversation_with_runs(mallory, 1)
    with pytest.raises(NotReplaceable), user_session(mallory) as s:
        new = _new_pending(s, mallory, own_conv, "steal")
        supersede_last_run(s, user_id=mallory, conversation_id=conv, replaced_id=last, new_id=new)
    with pytest.raises(NotReplaceable), user_session(mallory) as s:  # named under the caller's conversation
        new = _new_pending(s, mallory, own_conv, "steal")
        supersede_last_run(s, user_id=mallory, conversation_id=own_conv, replaced_id=last, new_id=new)
    assert _superseded(conv) == {"q0": None, "q1": None}


def test_runs_are_grouped_as_turns_with_their_earlier_versions():
    conv, user = uuid.uuid4(), uuid.uuid4()
    t = utcnow()

    def run(i: int) -> AgentRun:
        return AgentRun(user_id=user, conversation_id=conv, created_at=t + timedelta(seconds=i),
                        user_message=f"m{i}", status="ok")

    a, b1, b2, b3, c = (run(i) for i in range(5))
    b1.superseded_by, b2.superseded_by = b2.id, b3.id
    turns = group_versions([a, b1, b2, b3, c])
    assert [(x.run.user_message, [e.user_message for e in x.earlier]) for x in turns] == [
        ("m0", []), ("m3", ["m1", "m2"]), ("m4", [])]
    # a chain whose latest version is not in the page is shown, not hidden
    orphan = run(9)
    orphan.superseded_by = uuid.uuid4()
    assert [x.run.user_message for x in group_versions([orphan, c])] == ["m9", "m4"]
