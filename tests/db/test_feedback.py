"""core.feedback: a thumbs up or down and a short comment on one's own finished answers (C1, C3, C6)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlmodel import col, select

from core.db import NotFound, system_session, user_session
from core.feedback import set_feedback
from models import AgentRun
from models.schemas import MAX_FEEDBACK_COMMENT, FeedbackIn
from tests.factories import fill_user, make_user


def _runs(user_id: uuid.UUID) -> list[AgentRun]:
    with system_session() as s:
        return list(s.exec(select(AgentRun).where(AgentRun.user_id == user_id).order_by(col(AgentRun.id))).all())


def _feedback(run_id: uuid.UUID) -> tuple[int | None, str | None, datetime | None]:
    with system_session() as s:
        run = s.get(AgentRun, run_id)
        assert run is not None
        return run.feedback, run.feedback_comment, run.feedback_at


@pytest.fixture
def owner_and_intruder(any_db_url):
    owner, intruder = make_user(), make_user()
    fill_user(owner, runs=2, marker="owner")
    fill_user(intruder, runs=1, marker="intruder")
    return owner, intruder


def test_rate_comment_change_and_clear(owner_and_intruder):
    owner, _ = owner_and_intruder
    run = _runs(owner)[0]
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    set_feedback(user_id=owner, data=FeedbackIn(run_id=run.id, rating=1, comment="  Exactly right\n"), now=at)
    assert _feedback(run.id) == (1, "Exactly right", at)
    set_feedback(user_id=owner, data=FeedbackIn(run_id=run.id, rating=-1))  # a blank comment is none
    rating, comment, when = _feedback(run.id)
    assert (rating, comment) == (-1, None) and when is not None and when > at
    set_feedback(user_id=owner, data=FeedbackIn(run_id=run.id, rating=None, comment="ignored"))
    assert _feedback(run.id) == (None, None, None)
    assert _feedback(_runs(owner)[1].id) == (None, None, None)  # the other run is untouched


def test_another_users_answer_is_not_found_and_unchanged(owner_and_intruder):
    owner, intruder = owner_and_intruder
    run = _runs(owner)[0]
    for rating in (1, -1, None):
        with pytest.raises(NotFound):
            set_feedback(user_id=intruder, data=FeedbackIn(run_id=run.id, rating=rating, comment="pwned"))
    with pytest.raises(NotFound):
        set_feedback(user_id=owner, data=FeedbackIn(run_id=uuid.uuid4(), rating=1))
    assert _feedback(run.id) == (None, None, None)


def test_an_answer_still_streaming_cannot_be_rated(owner_and_intruder):
    owner, _ = owner_and_intruder
    conversation = _runs(owner)[0].conversation_id
    pending = AgentRun(user_id=owner, conversation_id=conversation, user_message="still going")
    with user_session(owner) as s:
        s.add(pending)
    with pytest.raises(NotFound):
        set_feedback(user_id=owner, data=FeedbackIn(run_id=pending.id, rating=1))
    assert _feedback(pending.id) == (None, None, None)


@pytest.mark.parametrize(
    "values",
    [
        {"rating": 0},
        {"rating": 2},
        {"rating": "up"},
        {"rating": 1, "comment": "x" * (MAX_FEEDBACK_COMMENT + 1)},
        {"rating": 1, "comment": "hidden \u202e text"},
        {"rating": 1, "comment": "bell \x07"},
        {"rating": 1, "extra": "field"},
    ],
)
def test_bad_feedback_is_refused_by_its_schema(values):
    with pytest.raises(ValidationError):
        FeedbackIn(run_id=uuid.uuid4(), **values)
