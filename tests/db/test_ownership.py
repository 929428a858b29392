"""C3: every core function that takes an id checks ownership first: another user's id is not found."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from core.chat import TurnRejected, run_turn
from core.conversations import delete_conversation, get_conversation, history, rename_conversation
from core.db import NotFound, system_session
from core.feedback import set_feedback
from core.profiles import activate_vibe, delete_vibe, save_vibe
from models import AgentRun, Conversation, VibeConfig
from models.schemas import FeedbackIn, RenameIn, VibeIn
from tests.chat_fixtures import ChatEnv
from tests.factories import fill_user, make_user


@pytest.fixture
def owner_and_intruder(any_db_url):
    owner, intruder = make_user(), make_user()
    ids = fill_user(owner, marker="owner")
    fill_user(intruder, marker="intruder")
    return owner, intruder, ids


def _snapshot(owner: uuid.UUID) -> tuple[object, ...]:
    with system_session() as s:
        convs = [(c.id, c.title) for c in s.exec(select(Conversation).where(Conversation.user_id == owner))]
        vibes = [(v.id, v.name, v.is_active) for v in s.exec(select(VibeConfig).where(VibeConfig.user_id == owner))]
        owned = s.exec(select(AgentRun).where(AgentRun.user_id == owner))
        runs = [(r.id, r.feedback, r.feedback_comment) for r in owned]
    return sorted(convs), sorted(vibes), sorted(runs)


def _a_run_of(owner: uuid.UUID) -> uuid.UUID:
    with system_session() as s:
        return s.exec(select(AgentRun.id).where(AgentRun.user_id == owner)).first() or uuid.uuid4()


@pytest.mark.parametrize(
    "call",
    ["get_conversation", "rename_conversation", "delete_conversation", "history", "save_vibe", "activate_vibe",
     "delete_vibe", "set_feedback"],
)
def test_another_users_id_is_not_found_and_changes_nothing(owner_and_intruder, call):
    owner, intruder, ids = owner_and_intruder
    conv, vibe = ids["conversation"], ids["vibe"]
    before = _snapshot(owner)
    actions = {
        "get_conversation": lambda: get_conversation(user_id=intruder, conversation_id=conv),
        "rename_conversation": lambda: rename_conversation(
            user_id=intruder, data=RenameIn(conversation_id=conv, title="pwned")),
        "delete_conversation": lambda: delete_conversation(user_id=intruder, conversation_id=conv),
        "history": lambda: history(user_id=intruder, conversation_id=conv),
        "save_vibe": lambda: save_vibe(user_id=intruder, data=VibeIn(name="pwned"), vibe_id=vibe),
        "activate_vibe": lambda: activate_vibe(user_id=intruder, vibe_id=vibe),
        "delete_vibe": lambda: delete_vibe(user_id=intruder, vibe_id=vibe),
        "set_feedback": lambda: set_feedback(
            user_id=intruder, data=FeedbackIn(run_id=_a_run_of(owner), rating=-1, comment="pwned")),
    }
    with pytest.raises(NotFound):
        actions[call]()
    assert _snapshot(owner) == before


def test_owner_can_act_on_own_ids(owner_and_intruder):
    owner, _, ids = owner_and_intruder
    rename_conversation(user_id=owner, data=RenameIn(conversation_id=ids["conversation"], title="renamed"))
    assert get_conversation(user_id=owner, conversation_id=ids["conversation"]).title == "renamed"
    delete_conversation(user_id=owner, conversation_id=ids["conversation"])
    with pytest.raises(NotFound):
        get_conversation(user_id=owner, conversation_id=ids["conversation"])


texts = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=0, max_size=50),
    st.sampled_from(["", " ", "\n\n", "\x00", "a\x1bb", "\u202e", "x" * 8001, "ok question"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, conv=st.one_of(st.just("own"), st.just("other"), st.uuids().map(str), st.text(max_size=10)))
def test_fuzz_run_turn_rejects_cleanly_or_answers(chat_env: ChatEnv, text: str, conv: str):
    """C6: whatever arrives, run_turn answers, or raises TurnRejected/NotFound — nothing else."""
    conversation = {"own": chat_env.conversation_id, "other": None}.get(conv, conv)
    if conversation is None:
        conversation = chat_env.new_conversation(user_id=make_user())
    with system_session() as s:
        before = len(s.exec(select(AgentRun)).all())
    try:
        turn = run_turn(user_id=chat_env.user_id, conversation_id=conversation, text=text,
                        settings=chat_env.settings, router=chat_env.router)
    except (TurnRejected, NotFound):
        with system_session() as s:
            assert len(s.exec(select(AgentRun)).all()) == before  # nothing stored
        return
    assert "".join(turn) and turn.result.status == "ok"
    turn.close()
