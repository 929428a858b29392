"""AppTest of the chat page against the loopback provider stub (real SDKs, real PostgreSQL)."""

from __future__ import annotations

from sqlmodel import select

from core.db import system_session
from models import AgentRun, Conversation
from tests.chat_fixtures import ChatEnv
from tests.stubs.provider_server import Fault, Reply


def _texts(at) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for e in at.error] + [w.value for w in at.warning] + [i.value for i in at.info]
    return "\n".join(str(p) for p in parts)


def test_send_a_message_and_see_the_streamed_answer_and_metadata(chat_env: ChatEnv, app):
    chat_env.stub.set_reply("openai", Reply(text="Split the monolith along the billing seam first.",
                                            input_tokens=900))
    at = app("pages/chat.py")
    assert not at.exception
    at.chat_input[0].set_value("Where should we split the monolith?").run()
    assert not at.exception
    text = _texts(at)
    assert "Where should we split the monolith?" in text
    assert "Split the monolith along the billing seam first." in text
    assert "openai · gpt-4o-mini · 900 in / 8 out tokens · $0.000140" in text
    with system_session() as s:
        [run] = s.exec(select(AgentRun)).all()
        [conv] = s.exec(select(Conversation).where(Conversation.user_id == at.advisor_user.id)).all()
    assert run.status == "ok" and run.user_id == at.advisor_user.id
    assert conv.title == "Where should we split the monolith?"
    # reopening the page replays the history from the database
    at.run()
    assert "Split the monolith along the billing seam first." in _texts(at)


def test_fallback_is_shown_under_the_answer(chat_env: ChatEnv, app):
    chat_env.stub.set_fault("openai", Fault("unavailable"))
    chat_env.stub.set_reply("anthropic", Reply(text="Answer from the secondary."))
    at = app("pages/chat.py")
    at.chat_input[0].set_value("hello").run()
    text = _texts(at)
    assert "Answer from the secondary." in text and "fell back from openai" in text


def test_all_down_shows_reference_and_retry_and_keeps_the_message(chat_env: ChatEnv, app):
    chat_env.stub.set_fault("openai", Fault("unavailable"))
    chat_env.stub.set_fault("anthropic", Fault("overloaded"))
    at = app("pages/chat.py")
    at.chat_input[0].set_value("are you there?").run()
    assert not at.exception
    with system_session() as s:
        [run] = s.exec(select(AgentRun)).all()
    assert run.status == "error" and run.user_message == "are you there?"
    errors = " ".join(e.value for e in at.error)
    assert f"reference {run.request_id}" in errors and "saved" in errors
    assert any(b.label == "Retry" for b in at.button)
    chat_env.stub.reset()
    chat_env.stub.set_reply("openai", Reply(text="Back online."))
    next(b for b in at.button if b.label == "Retry").click().run()
    assert "Back online." in _texts(at)
    with system_session() as s:
        statuses = sorted(r.status for r in s.exec(select(AgentRun)).all())
    assert statuses == ["error", "ok"]


def test_bad_input_shows_a_clear_message_and_stores_nothing(chat_env: ChatEnv, app):
    at = app("pages/chat.py")
    at.chat_input[0].set_value("bad \x07 bell").run()
    assert not at.exception
    assert any("Message not sent" in w.value for w in at.warning)
    with system_session() as s:
        assert s.exec(select(AgentRun)).all() == []
    assert chat_env.stub.requests() == []


def test_demo_mode_is_announced(app):
    at = app("pages/chat.py")
    assert any("Offline demo mode" in i.value for i in at.info)
    at.chat_input[0].set_value("What should a CTO measure?").run()
    assert not at.exception
    assert "demo · demo" in _texts(at)


def test_a_click_while_the_turn_is_accepted_leaves_no_pending_run(chat_env: ChatEnv, app, monkeypatch):
    """The browser's rerun request (a click elsewhere) lands while the message is being stored: the
    page's rerun never starts the answer, and the turn is recorded as cancelled with a Retry button
    instead of showing "Answer in progress…" until the server restarts."""
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    import core.chat

    chat_env.stub.set_reply("openai", Reply(text="An answer."))
    real = core.chat.run_turn
    fired: list[int] = []

    def run_turn_then_click(**kw):  # type: ignore[no-untyped-def]
        turn = real(**kw)
        if not fired:
            fired.append(1)
            ctx = get_script_run_ctx()
            assert ctx is not None and ctx.script_requests is not None
            ctx.script_requests.request_rerun(RerunData())
        return turn

    at = app("pages/chat.py")
    monkeypatch.setattr(core.chat, "run_turn", run_turn_then_click)
    at.chat_input[0].set_value("Is this answered?").run()
    assert not at.exception
    at.run()
    with system_session() as s:
        runs = s.exec(select(AgentRun)).all()
    assert [(r.user_message, r.status, r.error_code) for r in runs] == [
        ("Is this answered?", "interrupted", "cancelled")
    ]
    assert "Answer in progress…" not in [c.value for c in at.caption]
    assert "Retry" in [b.label for b in at.button]
    assert chat_env.stub.requests() == []


def test_rename_box_follows_the_title_the_first_message_gave(chat_env: ChatEnv, app):
    """The first message titles the conversation: the Rename box then holds that title, so saving it
    unedited keeps it (the box used to keep "New conversation" and write it back)."""
    chat_env.stub.set_reply("openai", Reply(text="Answer."))
    at = app("pages/chat.py")
    at.chat_input[0].set_value("Should we adopt Kafka this quarter?").run()
    assert not at.exception
    assert [t.value for t in at.text_input if t.label == "Title"] == ["Should we adopt Kafka this quarter?"]
    next(b for b in at.button if b.label == "Save title").click().run()
    with system_session() as s:
        [conv] = s.exec(select(Conversation).where(Conversation.user_id == at.advisor_user.id)).all()
    assert conv.title == "Should we adopt Kafka this quarter?"


def test_a_title_with_markdown_is_shown_as_typed(chat_env: ChatEnv, app):
    """A first message such as "Use **kwargs in [tests](x)" titles the conversation; its button and
    header show those characters (escaped for Markdown), not bold text and a link."""
    chat_env.stub.set_reply("openai", Reply(text="Answer."))
    at = app("pages/chat.py")
    at.chat_input[0].set_value("Use **kwargs in [tests](x) # now?").run()
    assert not at.exception
    escaped = r"Use \*\*kwargs in \[tests\](x) # now?"
    assert escaped in [h.value for h in at.header]
    assert any(b.label.startswith(escaped + "  ·  ") for b in at.button), [b.label for b in at.button]
