"""What a user can do to the chat's messages and conversation (issue 19): edit the last message,
regenerate the last answer, see earlier versions, copy an answer as Markdown, export the
conversation as Markdown, delete it.

Each control is drawn by ``ui.chat_area``'s hook points, inside the chat fragment: a click reruns
the fragment only. Edit and regenerate do not send anything themselves: their callbacks leave a
``Replacement`` that the fragment takes (``take_replacement``) and sends as a new turn replacing the
last run (``core.chat.run_turn(..., replaces=...)``; ``core.run_versions``). The replaced run stays
in the database and in the export; the chat shows it under "Earlier versions".

Stop is the chat input's own stop control (``st.chat_input(submit_mode="stop")``): it stops the
script run, so the turn's ``finally`` closes it (``interrupted`` / ``cancelled``, partial answer kept).
A button in the fragment could not do it: a click inside a running fragment is queued until the
run ends, not delivered at once.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import streamlit as st

from core import conversations
from core.conversation_export import answer_markdown_text, conversation_markdown, export_file_name
from core.conversations import ConversationSummary
from core.db import NotFound
from core.settings import get_settings
from models import AgentRun
from ui.chat_view import agent_choices, meta_line
from ui.messages import render_answer, render_user_text
from ui.text import literal

REPLACE_KEY = "chat_replace"
EDIT_KEY = "chat_editing"
DELETED_KEY = "chat_deleted_title"


@dataclass(frozen=True)
class Replacement:
    """A new turn that replaces the run ``run_id`` (the conversation's last), with ``text``."""

    run_id: uuid.UUID
    text: str


def request_replacement(run_id: uuid.UUID, text: str) -> None:
    """Callback: send ``text`` as a new version of the last turn on the fragment's next run."""
    st.session_state[REPLACE_KEY] = Replacement(run_id, text)
    st.session_state.pop(EDIT_KEY, None)


def take_replacement() -> Replacement | None:
    """The replacement asked for since the last run, once."""
    value = st.session_state.pop(REPLACE_KEY, None)
    return value if isinstance(value, Replacement) else None


# --- under a user message: edit --------------------------------------------------------------------
def _start_edit(run_id: uuid.UUID) -> None:
    st.session_state[EDIT_KEY] = run_id


def _cancel_edit() -> None:
    st.session_state.pop(EDIT_KEY, None)


def _send_edit(run_id: uuid.UUID, box: str) -> None:
    text = st.session_state.get(box, "")
    if isinstance(text, str) and text.strip():
        request_replacement(run_id, text)


def user_message_controls(run: AgentRun, *, last: bool) -> None:
    """Edit (the conversation's last message only): a box with the message, Send and Cancel."""
    if not last or run.status == "pending":
        return
    if st.session_state.get(EDIT_KEY) != run.id:
        st.button("Edit", key=f"edit_{run.id}", icon=":material/edit:", type="tertiary",
                  on_click=_start_edit, args=(run.id,), help="Edit this message and send it again")
        return
    box = f"edit_text_{run.id}"
    st.text_area("Edit your message", value=run.user_message, key=box,
                 max_chars=get_settings().max_message_chars)
    with st.container(horizontal=True):
        st.button("Send edited message", key=f"edit_send_{run.id}", type="primary", icon=":material/send:",
                  on_click=_send_edit, args=(run.id, box))
        st.button("Cancel", key=f"edit_cancel_{run.id}", on_click=_cancel_edit)


# --- under an answer: copy, regenerate, earlier versions ---------------------------------------------
@st.cache_data(max_entries=512, show_spinner=False)
def _copyable(output: str) -> str:
    """An answer as Markdown for the clipboard (a pure function of the text: shared cache is safe)."""
    return answer_markdown_text(output)


@st.dialog("Answer as Markdown", width="large")
def _markdown_dialog(output: str) -> None:
    st.code(_copyable(output), language="markdown", wrap_lines=True)


def copy_control(run: AgentRun) -> None:
    """Copy as Markdown: a button that opens the answer as a code block with its copy button, in a
    dialog (built on the click: a closed popover per answer would cost every run that draws it)."""
    if run.status != "pending" and run.output and st.button(
            "Markdown", key=f"markdown_{run.id}", icon=":material/content_copy:", type="tertiary"):
        _markdown_dialog(run.output)


def regenerate_control(run: AgentRun, *, last: bool) -> None:
    """Regenerate, on the last answer."""
    if last and run.status != "pending":
        st.button("Regenerate", key=f"regenerate_{run.id}", icon=":material/refresh:", type="tertiary",
                  on_click=request_replacement, args=(run.id, run.user_message),
                  help="Answer this message again; this answer stays under Earlier versions")


def earlier_versions(earlier: Sequence[AgentRun]) -> None:
    """The runs a turn replaced (edits, regenerations), oldest first, in a closed expander."""
    if not earlier:
        return
    with st.expander(f"Earlier versions ({len(earlier)})", icon=":material/history:"):
        for number, run in enumerate(earlier, start=1):
            st.markdown(f"**Version {number}** · {run.created_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
            render_user_text(run.user_message)
            if run.output:
                render_answer(run.output)
            st.caption(meta_line(run))


# --- beside the title: export, delete ---------------------------------------------------------------
def _export(user_id: uuid.UUID, conversation_id: uuid.UUID) -> Callable[[], bytes]:
    """The download's data, built only when the user clicks (deferred: nothing held in the session)."""
    titles = {agent: title for agent, (title, _desc) in agent_choices().items()}

    def build() -> bytes:
        return conversation_markdown(user_id=user_id, conversation_id=conversation_id,
                                     agent_titles=titles).encode("utf-8")

    return build


def _delete(user_id: uuid.UUID, conversation_id: uuid.UUID, title: str,
            forget_history: Callable[[], None]) -> None:
    """Delete's callback: the conversation is gone before the fragment reruns and reads the list."""
    with contextlib.suppress(NotFound):  # deleted meanwhile (another tab): the list is read again all the same
        conversations.delete_conversation(user_id=user_id, conversation_id=conversation_id)
    st.session_state[DELETED_KEY] = title
    forget_history()


def conversation_controls(summary: ConversationSummary, user_id: uuid.UUID,
                          forget_history: Callable[[], None]) -> None:
    """Export (Markdown, built on click) and Delete (with a confirmation step)."""
    st.download_button("Export", data=_export(user_id, summary.id), key=f"export_{summary.id}",
                       file_name=export_file_name(summary.title, datetime.now(UTC)), mime="text/markdown",
                       icon=":material/download:", on_click="ignore",
                       help="Download this conversation as a Markdown file")
    with st.popover("Delete", icon=":material/delete:"):
        turns = f"{summary.turns} turn{'' if summary.turns == 1 else 's'}"
        st.markdown(f"Delete **{literal(summary.title)}** and its {turns}? This cannot be undone. "
                    "What it used stays counted in your quota.")
        st.button("Delete conversation", key=f"delete_{summary.id}", type="primary",
                  icon=":material/delete_forever:", on_click=_delete,
                  args=(user_id, summary.id, summary.title, forget_history))


def deleted_notice() -> None:
    """Say which conversation was deleted, once, on the run after the deletion."""
    title = st.session_state.pop(DELETED_KEY, None)
    if isinstance(title, str):
        st.toast(f"Deleted “{literal(title)}”", icon=":material/delete:")
