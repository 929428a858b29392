"""Feedback on an answer: thumbs up or down (``st.feedback``) and, once rated, a short comment.

Both are stored on the run at once (``core.feedback.set_feedback``), so the prompt version's
figures (the analytics page, the prompt preview) count them from the next page run on.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import streamlit as st
from pydantic import ValidationError

from core.db import NotFound
from core.feedback import set_feedback
from models import AgentRun
from models.schemas import MAX_FEEDBACK_COMMENT, FeedbackIn, field_errors

THUMBS = {1: 1, 0: -1}  # st.feedback("thumbs") value -> the stored rating (+1 up, -1 down)


ERROR_KEY = "feedback_comment_error"


def widget_key(run_id: uuid.UUID) -> str:
    return f"feedback_{run_id}"


def comment_key(run_id: uuid.UUID) -> str:
    return f"feedback_comment_{run_id}"


def _save(user_id: uuid.UUID, data: FeedbackIn) -> bool:
    try:
        set_feedback(user_id=user_id, data=data)
    except NotFound:
        st.toast("That answer is no longer available.", icon=":material/warning:")
        return False
    return True


def _rated(user_id: uuid.UUID, run_id: uuid.UUID, comment: str, on_saved: Callable[[], None] | None) -> None:
    """``st.feedback`` callback (runs before the next script run): store the new rating, keeping
    the comment while the answer stays rated."""
    value = st.session_state.get(widget_key(run_id))
    rating = THUMBS.get(value) if value is not None else None
    if _save(user_id, FeedbackIn(run_id=run_id, rating=rating, comment=comment)) and on_saved is not None:
        on_saved()


def _commented(user_id: uuid.UUID, run_id: uuid.UUID, rating: int, on_saved: Callable[[], None] | None) -> None:
    """The comment form's callback: store the comment with the answer's rating."""
    try:
        data = FeedbackIn(run_id=run_id, rating=1 if rating > 0 else -1, comment=st.session_state[comment_key(run_id)])
    except ValidationError as exc:
        st.session_state[ERROR_KEY] = field_errors(exc).get("comment", "Invalid comment")
        return
    if _save(user_id, data) and on_saved is not None:
        on_saved()


def feedback_control(user_id: uuid.UUID, run: AgentRun, *, on_saved: Callable[[], None] | None = None) -> None:
    """Thumbs up/down under a finished answer, and a comment box once the answer is rated (in the
    row or container the caller opened).

    ``on_saved``: called once a rating or comment is stored (the chat drops the history it holds,
    so the next run draws the run as stored)."""
    if run.status == "pending" or not run.output:
        return
    rating = run.feedback
    default = None if rating is None else (1 if rating > 0 else 0)
    st.feedback(
        "thumbs",
        key=widget_key(run.id),
        default=default,
        on_change=_rated,
        args=(user_id, run.id, run.feedback_comment or "", on_saved),
    )
    if rating is None:
        return
    label = "Edit comment" if run.feedback_comment else "Add a comment"
    with st.popover(label, icon=":material/comment:", type="tertiary"), st.form(f"feedback_form_{run.id}"):
        st.text_area(
            "Why? (optional)",
            value=run.feedback_comment or "",
            max_chars=MAX_FEEDBACK_COMMENT,
            key=comment_key(run.id),
        )
        st.form_submit_button("Save comment", on_click=_commented, args=(user_id, run.id, rating, on_saved))
        if problem := st.session_state.pop(ERROR_KEY, None):
            st.error(problem)
