"""ui.feedback.feedback_control (AppTest): thumbs up or down stored on the run at once, a comment
once rated, nothing for an answer still streaming. (On the chat page: tests/e2e/test_feedback.py.)"""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from streamlit.testing.v1 import AppTest

from core import db as core_db
from core.db import system_session
from core.settings import get_settings
from models import AgentRun
from tests.factories import fill_user, make_user


def _control() -> None:
    import streamlit as st

    from core.db import system_session
    from models import AgentRun
    from ui.feedback import feedback_control

    with system_session() as s:
        run = s.get(AgentRun, st.session_state["run_id"])
    assert run is not None
    feedback_control(st.session_state["user_id"], run)


def _stored(run_id: uuid.UUID) -> tuple[int | None, str | None]:
    with system_session() as s:
        run = s.get(AgentRun, run_id)
        assert run is not None
        return run.feedback, run.feedback_comment


def _app(user_id: uuid.UUID, run_id: uuid.UUID) -> AppTest:
    at = AppTest.from_function(_control, default_timeout=30)
    at.session_state["user_id"] = user_id
    at.session_state["run_id"] = run_id
    return at.run()


def test_thumbs_are_stored_at_once_and_a_comment_after(any_db_url):
    core_db.migrate(get_settings().database_url)
    user = make_user()
    fill_user(user, runs=1)
    with system_session() as s:
        run_id = s.exec(select(AgentRun.id).where(col(AgentRun.user_id) == user)).one()
    at = _app(user, run_id)
    assert not at.exception
    assert at.feedback[0].value is None and not at.text_area  # no comment box before a rating
    at.feedback[0].set_value(1).run()
    assert _stored(run_id) == (1, None)
    at.text_area[0].set_value("  Clear and short  ")
    at.button[0].click().run()  # the form's "Save comment"
    assert not at.exception
    assert _stored(run_id) == (1, "Clear and short")
    at.feedback[0].set_value(0).run()  # changed to thumbs down: the comment stays
    assert _stored(run_id) == (-1, "Clear and short")
    fresh = _app(user, run_id)  # a new session starts from what is stored
    assert fresh.feedback[0].value == 0 and fresh.text_area[0].value == "Clear and short"
    fresh.feedback[0].set_value(None).run()  # un-rated: rating and comment cleared
    assert _stored(run_id) == (None, None)


def test_an_answer_still_streaming_has_no_control(any_db_url):
    core_db.migrate(get_settings().database_url)
    user = make_user()
    ids = fill_user(user, runs=0)
    pending = AgentRun(user_id=user, conversation_id=ids["conversation"], user_message="q")
    with system_session() as s:
        s.add(pending)
    at = _app(user, pending.id)
    assert not at.exception and not at.feedback
