"""How one chat turn is drawn: a finished turn (from what the session holds) and the live turn (the
message stored, its answer streamed, the finished run read back). ``ui.chat_area``'s fragments call
``past_turn`` and ``live_turn``; what a turn holds is ``core.run_versions.TurnVersions``, each turn
shown as its latest version, earlier versions (edits, regenerations, Retries) in an expander.

Hook points for controls:

* ``user_message_controls(run, last=...)``: under each shown user message (edit).
* ``answer_controls(run, last=..., user_id=...)``: under each shown answer (copy, feedback, regenerate),
  in one row.
* ``live_turn_controls(turn)``: beside the answer while it streams.

The live turn calls ``core.chat`` through its module (``chat.run_turn``), so a test that replaces
one of its functions reaches this module as well.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import streamlit as st

from core import chat
from core.request_context import request_context
from core.run_versions import TurnVersions
from models import AgentRun
from ui import chat_actions
from ui.chat_view import meta_line, run_notice
from ui.feedback import feedback_control
from ui.frame import SignedInUser
from ui.held_chat import HeldChat, catch_up, focused_run, forget_and_rerun
from ui.messages import render_user_text, stream_answer


# --- hook points ---------------------------------------------------------------------------------
def user_message_controls(run: AgentRun, *, last: bool) -> None:
    """Controls under a user message (edit): called inside its ``st.chat_message("user")`` after
    the text, for each shown turn and, once it has finished, for the live turn. ``last``: the
    conversation's newest turn."""
    chat_actions.user_message_controls(run, last=last)


def answer_controls(run: AgentRun, *, last: bool, user_id: uuid.UUID) -> None:
    """Controls under an answer (copy, regenerate, feedback), in one row: called inside its
    ``st.chat_message("assistant")`` after the answer and its status notice, before the metadata
    line, for each shown turn and, once it has finished, for the live turn. ``last``: the
    conversation's newest turn; ``user_id``: the signed-in user. A stored rating or comment reads
    the history again (everything is drawn again)."""
    if run.status == "pending":
        return
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        chat_actions.copy_control(run)
        feedback_control(user_id, run, on_saved=forget_and_rerun)
        chat_actions.regenerate_control(run, last=last)  # last: the one that comes and goes


def live_turn_controls(turn: chat.Turn) -> None:
    """Controls shown while an answer streams: called inside the live turn's
    ``st.chat_message("assistant")`` just before the stream starts. None today. Stop is not here:
    a click on a widget inside a running fragment is queued until the run ends, so it cannot end the
    stream; the chat input's stop control does (it stops the script run)."""


# --- a turn --------------------------------------------------------------------------------------
def past_turn(held: HeldChat, turn: TurnVersions, *, last: bool) -> None:
    """A finished turn as the session holds it; ``last``: the conversation's newest turn (its
    controls: edit, regenerate, Retry)."""
    run = turn.run
    if run.id == focused_run():
        st.caption("Found by your search:")
    with st.chat_message("user"):
        render_user_text(run.user_message)
        user_message_controls(run, last=last)
    with st.chat_message("assistant"):
        if run.output:
            st.markdown(held.answer(run))
        _status_notice(run, last=last)
        answer_controls(run, last=last, user_id=held.user_id)
        chat_actions.earlier_versions(turn.earlier)
        st.caption(meta_line(run))


def _status_notice(run: AgentRun, *, last: bool) -> None:
    notice = run_notice(run)  # interrupted by a stopped server, still in progress, or failed
    if notice is None:
        return
    if notice.kind == "progress":
        st.caption(notice.text)
    else:
        st.warning(notice.text, icon=":material/warning:")
        if last:
            # a new version of this turn (the failed run stays under Earlier versions)
            st.button("Retry", key=f"retry_{run.id}", icon=":material/refresh:",
                      on_click=chat_actions.request_replacement, args=(run.id, run.user_message))


def live_turn(user: SignedInUser, held: HeldChat, text: str, *, replaces: TurnVersions | None = None,
              first_words: Callable[[], None]) -> None:
    """Store the message (committed before any provider is called: ``core.chat.run_turn``), stream
    the answer, then close the turn (its row finished) and read that one run back by id, with the
    conversation list (title, count). A turn cut short (Stop, a click, a closed tab) is read back
    the same way by the next run (``ui.held_chat.catch_up``).

    ``replaces``: the last turn this one is a new version of (its runs are then earlier versions).
    ``first_words``: called once the answer's first words are shown (or the turn ended without)."""
    assert held.conversation_id is not None
    with request_context(page="chat") as rid:
        try:
            turn = chat.run_turn(user_id=user.id, conversation_id=held.conversation_id, text=text,
                                 request_id=rid, replaces=replaces.run.id if replaces else None)
        except chat.TurnRejected as exc:
            st.warning(exc.message, icon=":material/block:")
            first_words()
            return
        if replaces is not None:  # as stored with the new run: superseded by it
            replaces.run.superseded_by = turn.result.run_id
        held.unread.append(turn.result.run_id)  # read back when closed, by this run or the next
        try:  # a rerun can arrive at any Streamlit call below: close() records the turn then
            user_box = st.chat_message("user")
            with user_box:
                render_user_text(text)
            with st.chat_message("assistant"):
                live_turn_controls(turn)
                stream_answer(turn, first_shown=first_words)
                first_words()
                result = turn.result
                if result.status != "ok":
                    st.error(result.user_message, icon=":material/error:")
                    st.button("Retry", key=f"retry_{result.run_id}", icon=":material/refresh:",
                              on_click=chat_actions.request_replacement, args=(result.run_id, text))
                turn.close()
                catch_up(user, held)
                run = next(r for r in held.runs if r.id == result.run_id)
                with user_box:
                    user_message_controls(run, last=True)
                answer_controls(run, last=True, user_id=user.id)
                if replaces is not None:
                    chat_actions.earlier_versions([*replaces.earlier, replaces.run])
                st.caption(meta_line(run))
                held.live_shown.append(run.id)
        finally:  # no Streamlit call here: after the user's Stop every one, session state too, raises
            turn.close()
