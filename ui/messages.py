"""How chat messages are shown: answers through ``core.safe_markdown``, user text as typed.

Every place that shows an answer (the chat's history and live stream, the run detail) calls
``render_answer`` or ``stream_answer``; every place that shows what a user wrote calls
``render_user_text``. Nothing here passes ``unsafe_allow_html``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import streamlit as st

from core.safe_markdown import safe_markdown
from core.settings import get_settings
from ui.text import literal

# While an answer streams it is re-rendered whole (a later chunk can complete an image or a link
# begun earlier): at most every STREAM_RENDER_INTERVAL_S, and, as a long answer makes each render
# slower, never more than 1/STREAM_RENDER_SHARE of the time; the complete answer is rendered once
# more at the end.
STREAM_RENDER_INTERVAL_S = 0.1
STREAM_RENDER_SHARE = 4


def answer_markdown(text: str) -> str:
    """``text`` (model output) as the Markdown the page shows, with this deployment's image rules."""
    settings = get_settings()
    return safe_markdown(
        text,
        allowed_image_hosts=settings.image_hosts,
        max_data_image_bytes=settings.max_data_image_bytes,
    )


def render_answer(text: str) -> None:
    """Show a stored answer."""
    st.markdown(answer_markdown(text))


def stream_answer(deltas: Iterable[str], *, first_shown: Callable[[], None] | None = None) -> str:
    """Show an answer while it arrives, each time rendered whole through the same rules as a stored
    one, so no partial Markdown is ever shown unchecked; returns the full text. ``first_shown``:
    called once, right after the answer's first words are shown."""
    slot = st.empty()
    text = shown = ""
    next_at = float("-inf")
    for delta in deltas:
        text += delta
        started = time.monotonic()
        if text and started >= next_at:
            slot.markdown(answer_markdown(text))
            if not shown and first_shown is not None:
                first_shown()
            shown = text
            took = time.monotonic() - started
            next_at = started + max(STREAM_RENDER_INTERVAL_S, STREAM_RENDER_SHARE * took)
    if text != shown:
        slot.markdown(answer_markdown(text))
    return text


def render_user_text(text: str) -> None:
    """Show what a user wrote exactly as typed (no Markdown, line breaks kept)."""
    st.markdown(literal(text))
