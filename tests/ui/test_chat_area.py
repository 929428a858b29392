"""ui.chat_area's two fragments without the page's full run (AppTest runs both on every run, as a
message that hands the live area's turns to the history does): the turns come from what the session
holds and the database is read only when the conversation changes; a finished turn is read back by
id and the header and sidebar follow it; a turn cut short is read back by the next run.
(The page through the router: tests/ui/test_chat_page.py; in Chromium: tests/e2e/test_long_conversation.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core import db as core_db
from core.conversations import ConversationSummary
from core.settings import get_settings
from models import AgentRun
from tests.chat_fixtures import ChatEnv
from tests.stubs.provider_server import Reply
from ui.held_chat import HELD_KEY, HeldChat

TIMEOUT = 60.0


def _area(user_id: str) -> None:
    import uuid

    from ui.chat_area import chat_area
    from ui.frame import SignedInUser

    chat_area(SignedInUser(id=uuid.UUID(user_id), email="area@example.com", is_admin=False))


@pytest.fixture
def area(chat_env: ChatEnv) -> AppTest:
    core_db.migrate(get_settings().database_url)
    at = AppTest.from_function(_area, args=(str(chat_env.user_id),), default_timeout=TIMEOUT)
    return at.run()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Callable[[], dict[str, int]]:
    """Counts the calls of core.conversations' reads made through the module."""
    import core.conversations as conversations

    counts = {"history": 0, "list_conversations": 0, "get_run": 0}
    for name in counts:
        real = getattr(conversations, name)

        def counted(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(conversations, name, counted)
    return lambda: dict(counts)


def _send(at: AppTest, env: ChatEnv, text: str, answer: str) -> None:
    env.stub.set_reply("openai", Reply(text=answer))
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception


def _markdown(at: AppTest) -> list[str]:
    return [str(m.value) for m in at.main.markdown]


def test_turns_draw_history_from_the_session_and_read_it_only_on_a_conversation_change(
    area: AppTest, chat_env: ChatEnv, calls: Callable[[], dict[str, int]]
) -> None:
    assert not area.exception
    for i in range(3):
        _send(area, chat_env, f"question {i}", f"answer {i}")
    assert calls() == {"history": 0, "list_conversations": 3, "get_run": 3}  # one each after each answer
    area.run()  # a rerun without a message (a click): nothing read
    assert calls() == {"history": 0, "list_conversations": 3, "get_run": 3}
    shown = _markdown(area)
    assert [m for m in shown if m.startswith(("question", "answer"))] == [
        "question 0", "answer 0", "question 1", "answer 1", "question 2", "answer 2"]

    other = chat_env.new_conversation()
    held: HeldChat = area.session_state[HELD_KEY]
    held.conversations.append(ConversationSummary(id=other, title="Other", agent="general",
                                                  created_at=datetime.now(UTC), turns=0,
                                                  last_activity=datetime.now(UTC)))
    area.run()
    next(b for b in area.sidebar.button if b.label.startswith("Other")).click().run()
    assert calls()["history"] == 1
    assert not any(m.startswith("question") for m in _markdown(area))
    next(b for b in area.sidebar.button if b.label.startswith("question 0")).click().run()
    assert calls()["history"] == 2
    assert [m for m in _markdown(area) if m.startswith("answer")] == ["answer 0", "answer 1", "answer 2"]


def test_header_and_sidebar_show_the_turns_title_and_count(area: AppTest, chat_env: ChatEnv) -> None:
    _send(area, chat_env, "Should we hire a data engineer?", "Yes, one.")
    assert [h.value for h in area.main.header] == ["Should we hire a data engineer?"]
    assert any(c.value.endswith("· 1 turn") for c in area.main.caption), [c.value for c in area.main.caption]
    assert [b.label for b in area.sidebar.button if "·" in b.label] == ["Should we hire a data engineer?  ·  1"]
    _send(area, chat_env, "And a second one?", "Later.")
    assert any(c.value.endswith("· 2 turns") for c in area.main.caption)
    assert [b.label for b in area.sidebar.button if "·" in b.label] == ["Should we hire a data engineer?  ·  2"]


def test_a_turn_cut_short_is_read_back_by_the_next_run(
    area: AppTest, chat_env: ChatEnv, monkeypatch: pytest.MonkeyPatch, calls: Callable[[], dict[str, int]]
) -> None:
    """A rerun arrives while the message is stored (a click elsewhere): the rerun reads that one turn
    back as the database recorded it (cancelled, with Retry), not the whole history."""
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    import core.chat

    real = core.chat.run_turn

    def run_turn_then_click(**kw: Any) -> Any:
        turn = real(**kw)
        ctx = get_script_run_ctx()
        assert ctx is not None and ctx.script_requests is not None
        ctx.script_requests.request_rerun(RerunData())
        return turn

    monkeypatch.setattr(core.chat, "run_turn", run_turn_then_click)
    chat_env.stub.set_reply("openai", Reply(text="never shown"))
    area.chat_input[0].set_value("Cut short?").run()
    assert not area.exception
    assert calls()["history"] == 0 and calls()["get_run"] == 1
    assert "Cut short?" in _markdown(area)
    assert any("did not complete (cancelled)" in w.value for w in area.warning)
    assert "Retry" in [b.label for b in area.button]


def _run(i: int) -> AgentRun:
    return AgentRun(id=uuid.uuid4(), user_id=uuid.uuid4(), conversation_id=uuid.uuid4(), agent="general",
                    created_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i), user_message=f"q{i}",
                    output=f"a{i}", status="ok")


def test_the_history_takes_over_at_most_its_limit() -> None:
    held = HeldChat(user_id=uuid.uuid4(), conversations=[], limit=3)
    runs = [_run(i) for i in range(5)]
    for run in runs:
        held.add_run(run)
        held.answer(run)
    held.add_run(runs[4])  # the same run again replaces it
    assert [r.user_message for r in held.runs] == ["q0", "q1", "q2", "q3", "q4"]
    drawn = held.take_over()  # all but the last turn: that one stays with the live area
    assert [t.run.user_message for t in drawn] == ["q2", "q3"]
    assert [r.user_message for r in held.runs] == ["q2", "q3", "q4"]
    assert held.has_earlier and held.drawn == 2
    assert set(held.answers) == {r.id for r in runs[2:]}


def test_the_history_shows_its_newest_turns_or_all_or_from_the_run_asked_for() -> None:
    held = HeldChat(user_id=uuid.uuid4(), conversations=[])
    runs = [_run(i) for i in range(25)]
    for run in runs:
        held.add_run(run)
    shown = held.history_turns()  # 24 taken over (the last stays with the live area), 10 shown
    assert held.drawn == 24 and held.shown_from == 14
    assert [t.run.user_message for t in shown] == [f"q{i}" for i in range(14, 24)]
    assert [t.run.user_message for t in held.history_turns(show_all=True)][:1] == ["q14"]  # not due: as before
    held.take_over_due = True
    assert len(held.history_turns(show_all=True)) == 24 and held.shown_from == 0
    held.take_over_due = True
    assert [t.run.user_message for t in held.history_turns(focus=runs[3].id)][:1] == ["q3"]
    held.take_over_due = True
    assert held.history_turns(focus=runs[20].id)[0].run.user_message == "q14"  # already shown


def test_a_control_on_an_earlier_turn_draws_the_turns_the_history_had() -> None:
    held = HeldChat(user_id=uuid.uuid4(), conversations=[])
    for i in range(12):
        held.add_run(_run(i))
    assert [t.run.user_message for t in held.history_turns()][-1] == "q10"
    for i in range(12, 16):  # finished in the live area meanwhile
        held.add_run(_run(i))
    assert [t.run.user_message for t in held.history_turns()][-1] == "q10"  # the history reran alone
    assert held.drawn == 11  # the live area starts after them


def test_an_opened_conversation_shows_its_newest_turns_and_a_button_for_the_rest(
    area: AppTest, chat_env: ChatEnv
) -> None:
    for i in range(13):
        _send(area, chat_env, f"question {i}", f"answer {i}")
    opened = AppTest.from_function(_area, args=(str(chat_env.user_id),), default_timeout=TIMEOUT).run()
    assert not opened.exception
    answers = [m for m in _markdown(opened) if m.startswith("answer")]
    assert answers == [f"answer {i}" for i in range(2, 13)]  # ten in the history, the last in the live area
    button = next(b for b in opened.main.button if b.label == "Show 2 earlier turns")
    button.click().run()
    assert not opened.exception
    assert [m for m in _markdown(opened) if m.startswith("answer")] == [f"answer {i}" for i in range(13)]
    assert not [b for b in opened.main.button if b.label.startswith("Show")]
