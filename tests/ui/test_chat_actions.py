"""ui.chat_actions in the chat fragment (AppTest, loopback stub, real SDKs): edit the last message,
regenerate the last answer, Retry as a new version, earlier versions shown in an expander, copy an
answer as Markdown, delete a conversation after a confirmation. (In Chromium, with Stop and the
export's download: tests/e2e/test_chat_actions.py.)"""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from core import db as core_db
from core.db import system_session
from core.settings import get_settings
from models import AgentRun, Conversation
from tests.chat_fixtures import ChatEnv
from tests.stubs.provider_server import Fault, Reply

TIMEOUT = 60.0


def _area(user_id: str) -> None:
    import uuid

    from ui.chat_area import chat_area
    from ui.frame import SignedInUser

    chat_area(SignedInUser(id=uuid.UUID(user_id), email="actions@example.com", is_admin=False))


@pytest.fixture
def area(chat_env: ChatEnv) -> AppTest:
    core_db.migrate(get_settings().database_url)
    at = AppTest.from_function(_area, args=(str(chat_env.user_id),), default_timeout=TIMEOUT)
    return at.run()


def _send(at: AppTest, env: ChatEnv, text: str, answer: str) -> None:
    env.stub.set_reply("openai", Reply(text=answer))
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception


def _runs(user_id: uuid.UUID) -> list[AgentRun]:
    with system_session() as s:
        return list(s.exec(select(AgentRun).where(AgentRun.user_id == user_id)
                           .order_by(col(AgentRun.created_at))).all())


def _main_markdown(at: AppTest) -> list[str]:
    return [str(m.value) for m in at.main.markdown]


def _button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label)


def test_regenerate_the_last_answer_keeps_the_first_under_earlier_versions(area: AppTest, chat_env: ChatEnv):
    _send(area, chat_env, "first question", "first answer")
    _send(area, chat_env, "second question", "an answer to redo")
    assert [b.label for b in area.button if b.label == "Regenerate"] == ["Regenerate"]  # the last answer only
    chat_env.stub.set_reply("openai", Reply(text="a better answer"))
    _button(area, "Regenerate").click().run()
    assert not area.exception, area.exception
    runs = _runs(chat_env.user_id)
    assert [(r.user_message, r.output, r.superseded_by) for r in runs] == [
        ("first question", "first answer", None),
        ("second question", "an answer to redo", runs[2].id),
        ("second question", "a better answer", None),
    ]
    for at in (area, area.run()):  # right after the turn, and drawn from the held history
        shown = _main_markdown(at)
        assert shown.count("second question") == 2  # the latest turn, and its earlier version
        assert "a better answer" in shown
        [expander] = [e for e in at.expander if e.label.startswith("Earlier versions")]
        assert expander.label == "Earlier versions (1)"
        assert "an answer to redo" in [str(m.value) for m in expander.markdown]


def test_edit_the_last_message_and_send_it_again(area: AppTest, chat_env: ChatEnv):
    _send(area, chat_env, "first question", "first answer")
    _send(area, chat_env, "a question with a typo", "an answer to a typo")
    assert [b.key for b in area.button if b.label == "Edit"] == [f"edit_{_runs(chat_env.user_id)[1].id}"]
    _button(area, "Edit").click().run()
    [box] = area.text_area
    assert box.value == "a question with a typo"
    box.set_value("a question without a typo")
    chat_env.stub.set_reply("openai", Reply(text="the right answer"))
    _button(area, "Send edited message").click().run()
    assert not area.exception, area.exception
    runs = _runs(chat_env.user_id)
    assert [(r.user_message, r.superseded_by) for r in runs] == [
        ("first question", None), ("a question with a typo", runs[2].id), ("a question without a typo", None)]
    assert runs[2].output == "the right answer"
    sent = chat_env.stub.requests("openai")[-1].body["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == [
        "first question", "first answer", "a question without a typo"]


def test_retry_of_a_failed_answer_is_a_new_version_of_it(area: AppTest, chat_env: ChatEnv):
    chat_env.stub.set_fault("openai", Fault("unavailable"))
    chat_env.stub.set_fault("anthropic", Fault("overloaded"))
    area.chat_input[0].set_value("are you there?").run()
    chat_env.stub.reset()
    chat_env.stub.set_reply("openai", Reply(text="Back online."))
    _button(area, "Retry").click().run()
    assert not area.exception, area.exception
    runs = _runs(chat_env.user_id)
    assert [(r.status, r.superseded_by) for r in runs] == [("error", runs[1].id), ("ok", None)]
    assert "Back online." in _main_markdown(area)


def test_copy_an_answer_as_markdown(area: AppTest, chat_env: ChatEnv):
    _send(area, chat_env, "a table please", "**Plan**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![x](https://img.example/x.png)")
    area.run()
    assert not area.code  # built when asked for
    _button(area, "Markdown").click().run()  # opens a dialog
    [code] = [c for c in area.code if c.language == "markdown"]
    # the answer's Markdown as the export writes it: a table stays a table, an image becomes a link
    assert code.value.startswith("**Plan**\n\n| a | b |\n| --- | --- |\n| 1 | 2 |")
    assert "![" not in code.value and "(<https://img.example/x.png>)" in code.value


def test_delete_a_conversation_after_confirming(area: AppTest, chat_env: ChatEnv):
    _send(area, chat_env, "to be deleted", "gone soon")
    doomed = chat_env.conversation_id
    assert "Delete conversation" in [b.label for b in area.button]  # the confirmation, inside the popover
    _button(area, "Delete conversation").click().run()
    assert not area.exception, area.exception
    with system_session() as s:
        assert s.exec(select(Conversation).where(Conversation.id == doomed)).all() == []
        assert s.exec(select(AgentRun).where(AgentRun.conversation_id == doomed)).all() == []
    assert "to be deleted" not in _main_markdown(area)
    assert any("Deleted" in str(t.value) for t in area.toast)


def test_thumbs_on_an_answer_are_stored_and_a_comment_follows(area: AppTest, chat_env: ChatEnv):
    """Feedback (ui.feedback through the answer_controls hook): the live answer and the drawn history
    both carry the thumbs; a rating is stored at once and the comment box appears on the next run."""
    _send(area, chat_env, "first question", "first answer")
    _send(area, chat_env, "second question", "second answer")
    first, second = _runs(chat_env.user_id)
    assert len(area.feedback) == 2 and not area.text_area
    area.feedback(key=f"feedback_{first.id}").set_value(0).run()
    assert not area.exception
    area.feedback(key=f"feedback_{second.id}").set_value(1).run()
    stored = {r.id: (r.feedback, r.feedback_comment) for r in _runs(chat_env.user_id)}
    assert stored == {first.id: (-1, None), second.id: (1, None)}
    box = area.text_area(key=f"feedback_comment_{second.id}")
    box.set_value("Right to the point")
    next(b for b in area.button if b.label == "Save comment" and str(second.id) in str(b.key)).click().run()
    assert not area.exception
    assert {r.id: r.feedback_comment for r in _runs(chat_env.user_id)}[second.id] == "Right to the point"
