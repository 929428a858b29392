"""Versions of a turn (issue 19): only the last run of a conversation is replaced, in the user's own
session, and the replaced run stays (core.run_versions)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import col, select

from core.chat import TurnRejected, run_turn
from core.db import system_session, user_session
from core.run_versions import LATEST, NotReplaceable, group_versions, supersede_last_run
from models import AgentRun, Conversation
from models.types import utcnow
from tests.chat_fixtures import BOTH_DATABASES, ChatEnv
from tests.factories import make_user
from tests.stubs.provider_server import Reply


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


# --- through the chat turn (real SDKs against the loopback stub) -----------------------------------
def _send(env: ChatEnv, text: str, reply: str, replaces: uuid.UUID | None = None) -> uuid.UUID:
    env.stub.set_reply("openai", Reply(text=reply))
    turn = run_turn(user_id=env.user_id, conversation_id=env.conversation_id, text=text, settings=env.settings,
                    router=env.router, replaces=replaces)
    assert "".join(turn) == reply
    turn.close()
    return turn.result.run_id


def _sent(env: ChatEnv) -> list[tuple[str, str]]:
    """The conversation the model was sent last (roles and texts, the system prompt left out)."""
    messages = env.stub.requests("openai")[-1].body["messages"]
    return [(m["role"], m["content"]) for m in messages if m["role"] != "system"]


@BOTH_DATABASES
def test_regenerate_and_edit_make_new_runs_and_the_model_sees_latest_versions_only(chat_env: ChatEnv):
    first = _send(chat_env, "q1", "a1")
    second = _send(chat_env, "q2", "a2")
    regenerated = _send(chat_env, "q2", "a2 again", replaces=second)  # regenerate the last answer
    assert _sent(chat_env) == [("user", "q1"), ("assistant", "a1"), ("user", "q2")]
    edited = _send(chat_env, "q2, edited", "a2 edited", replaces=regenerated)  # edit the last message
    assert _sent(chat_env) == [("user", "q1"), ("assistant", "a1"), ("user", "q2, edited")]
    _send(chat_env, "q3", "a3")
    assert _sent(chat_env) == [("user", "q1"), ("assistant", "a1"), ("user", "q2, edited"),
                               ("assistant", "a2 edited"), ("user", "q3")]
    # every version stays stored, each pointing at the one that replaced it
    links = _superseded(chat_env.conversation_id)
    assert links == {"q1": None, "q2": links["q2"], "q2, edited": None, "q3": None}
    with system_session() as s:
        by_id = {r.id: r for r in s.exec(select(AgentRun).where(AgentRun.conversation_id == chat_env.conversation_id))}
    assert by_id[second].superseded_by == regenerated and by_id[regenerated].superseded_by == edited
    assert by_id[first].superseded_by is None and by_id[regenerated].output == "a2 again"
    assert len(by_id) == 5


@BOTH_DATABASES
def test_a_new_version_of_an_earlier_turn_is_refused_with_nothing_stored(chat_env: ChatEnv):
    first = _send(chat_env, "q1", "a1")
    _send(chat_env, "q2", "a2")
    calls = len(chat_env.stub.requests())
    with pytest.raises(TurnRejected, match="Only the last message") as info:
        run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="q1 again",
                 settings=chat_env.settings, router=chat_env.router, replaces=first)
    assert info.value.reason == "not_replaceable"
    assert len(chat_env.stub.requests()) == calls  # no provider call
    assert _superseded(chat_env.conversation_id) == {"q1": None, "q2": None}
