"""The chat area shows a turn whose server stopped mid-answer as interrupted (C24): its partial answer,
"Interrupted: the server stopped while answering" and Retry, which answers; "Answer in progress…"
only while the run's heartbeat is live. (In Chromium after a real crash:
tests/e2e/test_interrupted_turns.py.)"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

from core import db as core_db
from core.db import system_session
from core.settings import get_settings
from models import AgentRun
from models.types import utcnow
from tests.chat_fixtures import ChatEnv
from tests.stubs.provider_server import Reply
from ui.chat_view import SERVER_STOPPED

TIMEOUT = 60.0


def _area(user_id: str) -> None:
    import uuid

    from ui.chat_area import chat_area
    from ui.frame import SignedInUser

    chat_area(SignedInUser(id=uuid.UUID(user_id), email="area@example.com", is_admin=False))


def _pending_run(env: ChatEnv, *, heartbeat_age: timedelta, output: str = "The first half of") -> uuid.UUID:
    run_id = uuid.uuid4()
    with system_session() as s:
        s.execute(insert(AgentRun.__table__), {  # type: ignore[attr-defined]
            "id": run_id, "user_id": env.user_id, "conversation_id": env.conversation_id, "agent": "general",
            "created_at": utcnow() - heartbeat_age, "user_message": "What now?", "output": output,
            "status": "pending", "request_id": "ref-stopped", "provider": "openai", "model": "gpt-4o-mini",
            "heartbeat_at": utcnow() - heartbeat_age})
    return run_id


@pytest.fixture
def area(chat_env: ChatEnv) -> AppTest:
    core_db.migrate(get_settings().database_url)
    return AppTest.from_function(_area, args=(str(chat_env.user_id),), default_timeout=TIMEOUT)


def test_a_turn_whose_server_stopped_shows_its_partial_answer_the_notice_and_retry(area: AppTest, chat_env: ChatEnv):
    _pending_run(chat_env, heartbeat_age=timedelta(minutes=2))  # the sweep has not closed it yet
    area.run()
    assert not area.exception, area.exception
    assert any("The first half of" in str(m.value) for m in area.main.markdown)
    [warning] = area.main.warning
    assert str(warning.value).startswith(SERVER_STOPPED) and "ref-stopped" in str(warning.value)
    assert not [c for c in area.main.caption if "Answer in progress" in str(c.value)]
    assert not [c for c in area.main.caption if "no provider answered" in str(c.value)]
    [retry] = [b for b in area.main.button if b.label == "Retry"]

    chat_env.stub.set_reply("openai", Reply(text="The whole answer, this time."))
    retry.click().run()
    assert not area.exception, area.exception
    assert any("The whole answer, this time." in str(m.value) for m in area.main.markdown)


def test_a_pending_run_with_a_live_heartbeat_is_in_progress(area: AppTest, chat_env: ChatEnv):
    _pending_run(chat_env, heartbeat_age=timedelta(seconds=5))
    area.run()
    assert not area.exception, area.exception
    assert [c for c in area.main.caption if "Answer in progress" in str(c.value)]
    assert not area.main.warning
    assert not [b for b in area.main.button if b.label == "Retry"]
