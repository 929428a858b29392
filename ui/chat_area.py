"""The chat page's working area: two ``st.fragment``s, the history and the live area.

* ``chat_history`` (key ``chat_history``) draws the open conversation's turns, all but the last, as
  they were when it last ran. It runs on the page's full run and when the conversation changes; a
  message does not rerun it, so a long history costs a new turn nothing, on the server or in the
  browser.
* ``chat_live`` (key ``chat_live``) holds the chat input (pinned to the bottom), the turns after
  those (always the last one, so the controls of the last turn live here), the live turn, and it
  fills the header (title, turn count) and the sidebar's conversation list. A message, an edit, a
  regeneration or a Retry reruns this fragment alone. When it shows ``LIVE_TURNS`` finished turns,
  the next message reruns the history too, which then takes them over. While a turn goes live, the
  finished turns the live area showed stay on screen as they were, each in its place, and are drawn
  again once the answer's first words are out: what the user waits for comes first.

Each turn is shown as its latest version, earlier versions (edits, regenerations, Retries: a new
version of the last turn, ``ui.chat_actions``) in an expander.

What is read from the database, and when: the conversation list and the open conversation's history
on the page's full run and when the conversation changes; between those, both fragments draw from
what the session holds (``ui.held_chat.HeldChat``, each answer's Markdown rendered once). A turn: its message is
stored by ``core.chat.run_turn`` (committed before any provider is called) and its answer streams;
then the turn is closed (its row finished) and that one run is read back by id, with the
conversation list (title, count). A turn cut short (Stop, a click, a closed tab) is read back the
same way by the next run of either fragment.

Stop is the chat input's own stop control (``submit_mode="stop"``): it stops the script run, and
the live turn's ``finally`` closes the turn (``interrupted`` / ``cancelled``, the partial answer kept).

Hook points for controls:

* ``conversation_controls(summary, user)``: in the header beside the title (rename, export, delete).
* ``user_message_controls(run, last=...)``: under each shown user message (edit).
* ``answer_controls(run, last=..., user_id=...)``: under each shown answer (regenerate, copy, feedback).
* ``live_turn_controls(turn)``: beside the answer while it streams.
* ``ui.held_chat.open_conversation(conversation_id, run_id=None)``: show a conversation (a deep
  link, a search hit). ``open_linked_conversation()`` does it for the page's link
  ``?conversation=<id>&run=<id>`` (``link_params``); the run asked for is loaded into the history
  and marked.
* ``ui.held_chat.forget_history()``: drop what the session holds; the next run reads the database.
* ``rerun_chat()`` (widget callbacks only): rerun both fragments, after the callback changed what
  the history shows (a conversation opened or deleted, earlier runs changed).

A widget reruns only the fragment that drew it. A control on the last turn or in the header is in
the live area; a control on an earlier turn is in the history, and its callback calls
``rerun_chat()`` if what it changed must be drawn again.

The page calls ``core.chat`` and ``core.conversations`` through their modules (``chat.run_turn``),
so a test that replaces one of their functions reaches this module as well.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core import chat, conversations
from core.conversations import ConversationSummary
from core.request_context import request_context
from core.run_versions import NotReplaceable, TurnVersions
from core.settings import get_settings
from models import AgentRun
from models.schemas import MAX_TITLE, ConversationIn, RenameIn, field_errors
from ui import chat_actions
from ui.chat_view import agent_choices, meta_line, run_notice
from ui.feedback import feedback_control
from ui.frame import SignedInUser, guarded
from ui.held_chat import (
    HELD_KEY,
    OPEN_KEY,
    PAGE_SIZE,
    RELOAD_KEY,
    HeldChat,
    catch_up,
    focused_run,
    forget_history,
    load_held,
    open_conversation,
)
from ui.messages import render_user_text, stream_answer
from ui.text import literal, typing_limit

HISTORY_KEY = "chat_history"  # fragment keys, for st.rerun([...]) from a widget callback
LIVE_KEY = "chat_live"
RENAME_ERROR_KEY = "chat_rename_error"
HISTORY_OK_KEY = "chat_history_ok"
LIVE_TURNS = 10  # finished turns the live area shows before the history takes them over
HINT = "Ask anything about your team, stack, roadmap or numbers — the answer is tuned to your profile and vibe."


# --- hook points ---------------------------------------------------------------------------------
def rerun_chat() -> None:
    """From a widget callback only: rerun the history and the live area (not only the fragment that
    drew the widget), e.g. after ``open_conversation`` or ``forget_history``."""
    st.rerun([HISTORY_KEY, LIVE_KEY])


def conversation_controls(summary: ConversationSummary, user: SignedInUser) -> None:
    """Controls for the open conversation, in the header beside its title: drawn by the live area
    at the end of each of its runs, after the turn if there was one, so ``summary`` has the latest
    title and count. Rename, then Export and Delete (``ui.chat_actions``)."""
    with st.popover("Rename", icon=":material/edit:"):
        # keyed by the stored title too: when it changes (the first message titles the conversation),
        # the box starts from the new title instead of keeping the one it was first drawn with
        box = f"rename_{summary.id}_{summary.title}"
        st.text_input("Title", value=summary.title, max_chars=typing_limit(MAX_TITLE), key=box)
        st.button("Save title", key=f"rename_save_{summary.id}", on_click=_rename,
                  args=(user.id, summary.id, box))
        if problem := st.session_state.pop(RENAME_ERROR_KEY, None):
            st.error(problem)
    chat_actions.conversation_controls(summary, user.id, _forget_and_rerun)


def user_message_controls(run: AgentRun, *, last: bool) -> None:
    """Controls under a user message (edit): called inside its ``st.chat_message("user")`` after
    the text, for each shown turn and, once it has finished, for the live turn. ``last``: the
    conversation's newest turn (drawn by the live area)."""
    chat_actions.user_message_controls(run, last=last)


def answer_controls(run: AgentRun, *, last: bool, user_id: uuid.UUID) -> None:
    """Controls under an answer (copy, regenerate, feedback), in one row: called inside its
    ``st.chat_message("assistant")`` after the answer and its status notice, before the metadata
    line, for each shown turn and, once it has finished, for the live turn. ``last``: the
    conversation's newest turn (drawn by the live area); ``user_id``: the signed-in user. A stored
    rating or comment reads the history again (both fragments rerun)."""
    if run.status == "pending":
        return
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        chat_actions.copy_control(run)
        feedback_control(user_id, run, on_saved=_forget_and_rerun)
        chat_actions.regenerate_control(run, last=last)  # last: the one that comes and goes


def live_turn_controls(turn: chat.Turn) -> None:
    """Controls shown while an answer streams: called inside the live turn's
    ``st.chat_message("assistant")`` just before the stream starts, in the live area. None today.
    Stop is not here: a click on a widget inside a running fragment is queued until the run ends,
    so it cannot end the stream; the chat input's stop control does (it stops the script run)."""


# --- the fragments -------------------------------------------------------------------------------
def chat_page(user: SignedInUser) -> None:
    """The page's full run: what the session holds is read again, then the chat area is drawn."""
    st.session_state[RELOAD_KEY] = True
    chat_area(user)


def chat_area(user: SignedInUser) -> None:
    """The header's place, then the history and the live area (which fills the header)."""
    header = st.container()
    chat_history(user)
    chat_live(user, header)


@st.fragment(key=HISTORY_KEY)
def chat_history(user: SignedInUser) -> None:
    """The open conversation's turns (see the module docstring)."""
    with guarded("chat"):  # a fragment rerun runs outside the page's frame: the same frame again
        st.session_state[HISTORY_OK_KEY] = False
        held = load_held(user)
        catch_up(user, held)
        earlier_turns = held.take_over()
        if held.has_earlier:
            st.button("Load earlier messages", icon=":material/expand_less:", on_click=_load_earlier)
        for turn in earlier_turns:
            _past_turn(held, turn, last=False)
        st.session_state[HISTORY_OK_KEY] = True


@st.fragment(key=LIVE_KEY)
def chat_live(user: SignedInUser, header: DeltaGenerator) -> None:
    """Chat input, the turns finished since the history ran, the live turn, header and sidebar."""
    with guarded("chat"):
        if not st.session_state.get(HISTORY_OK_KEY):
            return  # the history's last run failed and shows why
        held: HeldChat | None = st.session_state.get(HELD_KEY)
        if (held is None or held.drawn is None or held.user_id != user.id
                or held.conversation_id != st.session_state.get(OPEN_KEY)):
            st.rerun()  # the history has not drawn what the session holds (a control forgot rerun_chat)
        assert held is not None and held.drawn is not None and held.conversation_id is not None
        catch_up(user, held)
        chat_actions.deleted_notice()
        with st.bottom:  # read first (it is drawn at the bottom wherever it is called)
            prompt = st.chat_input("Ask your advisor…", max_chars=typing_limit(get_settings().max_message_chars),
                                   submit_mode="stop", on_submit=_submitted)
        replacement = chat_actions.take_replacement()
        if prompt:
            replacement = None  # a message typed meanwhile goes first; the edit or regeneration is dropped
        newer = held.turns()[held.drawn :]
        replaced = None
        if replacement is not None and newer and newer[-1].run.id == replacement.run_id:
            replaced = newer.pop()  # drawn again below as the live turn's new version
        live = bool(prompt) or replacement is not None
        hint = not newer and replaced is None and not held.drawn and not live
        # One place per turn, in order, then the live turn's. A finished turn this fragment showed
        # in the same place last time stays on screen as it was and, when a turn goes live, is drawn
        # again once the answer's first words are out; any other place is cleared or filled at once.
        kept: list[tuple[DeltaGenerator, TurnVersions, bool]] = []

        def draw_kept() -> None:
            while kept:
                box, turn, last = kept.pop(0)
                with box:
                    _past_turn(held, turn, last=last)

        for i, turn in enumerate(newer):
            last = i == len(newer) - 1 and not live
            if i < len(held.live_shown) and held.live_shown[i] == turn.run.id:
                kept.append((st.container(), turn, last))
                if not live:
                    draw_kept()
            else:
                with st.empty().container():
                    _past_turn(held, turn, last=last)
        slot = st.empty()
        for _ in range(len(newer) + 1, held.live_places):
            st.empty()  # a place the last run used and this one does not (the history took its turn)
        held.live_places = len(newer) + 1
        held.live_shown = [turn.run.id for turn in newer]

        if hint:
            slot.caption(HINT)
        elif prompt:
            with slot.container():
                _live_turn(user, held, prompt, first_words=draw_kept)
        elif replacement is not None:
            with slot.container():
                if replaced is None:  # not the last turn (any more): nothing is sent
                    st.warning(NotReplaceable().message, icon=":material/block:")
                else:
                    _live_turn(user, held, replacement.text, replaces=replaced, first_words=draw_kept)
        draw_kept()
        current = next(c for c in held.conversations if c.id == held.conversation_id)
        with header:
            _header(user, current)
        with st.sidebar.container():
            _sidebar(user, held)


def _submitted() -> None:
    """The chat input's callback: a live area that shows ``LIVE_TURNS`` finished turns hands them
    to the history on this run (both fragments rerun); otherwise the live area reruns alone."""
    held: HeldChat | None = st.session_state.get(HELD_KEY)
    if held is not None and held.drawn is not None and len(held.turns()) + len(held.unread) - held.drawn >= LIVE_TURNS:
        rerun_chat()


def _load_earlier() -> None:
    held: HeldChat | None = st.session_state.get(HELD_KEY)
    if held is not None:
        held.limit += PAGE_SIZE
        held.conversation_id = None
    rerun_chat()


def _forget_and_rerun() -> None:
    """For a callback that changed stored runs or conversations (Delete, feedback): read again, both
    fragments rerun."""
    forget_history()
    rerun_chat()


def _switch(conversation_id: uuid.UUID) -> None:
    open_conversation(conversation_id)
    rerun_chat()


def _rename(user_id: uuid.UUID, conversation_id: uuid.UUID, box: str) -> None:
    """Save title's callback: the title is stored before the live area reruns and reads the list."""
    try:
        conversations.rename_conversation(
            user_id=user_id, data=RenameIn(conversation_id=conversation_id, title=st.session_state[box]))
    except ValueError as exc:
        st.session_state[RENAME_ERROR_KEY] = next(iter(field_errors(exc).values()))
        return
    held: HeldChat | None = st.session_state.get(HELD_KEY)
    if held is not None:
        held.list_stale = True


def _start(user_id: uuid.UUID, agent_id: str) -> None:
    """Start's callback: the new conversation is stored and opened before both fragments rerun."""
    conv = conversations.create_conversation(user_id=user_id, data=ConversationIn(agent=agent_id))
    forget_history()
    open_conversation(conv.id)
    rerun_chat()


def _past_turn(held: HeldChat, turn: TurnVersions, *, last: bool) -> None:
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


def _live_turn(user: SignedInUser, held: HeldChat, text: str, *, replaces: TurnVersions | None = None,
               first_words: Callable[[], None]) -> None:
    """Store the message, stream the answer, then read the finished run back (module docstring).

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


def _header(user: SignedInUser, current: ConversationSummary) -> None:
    agents = agent_choices()
    head, tools = st.columns([4, 1])
    head.header(literal(current.title))
    turns = f"{current.turns} turn{'' if current.turns == 1 else 's'}"
    head.caption(f"Advisor mode: {agents.get(current.agent, (current.agent, ''))[0]} · {turns}")
    with tools:
        conversation_controls(current, user)


def _sidebar(user: SignedInUser, held: HeldChat) -> None:
    agents = agent_choices()
    st.subheader("Conversations")
    with st.popover("New conversation", icon=":material/add:", width="stretch"):
        agent_id = st.selectbox(
            "Advisor mode", options=list(agents), format_func=lambda a: agents[a][0], key="new_conv_agent"
        )
        st.caption(agents[agent_id][1])
        st.button("Start", type="primary", key="new_conv_start", on_click=_start, args=(user.id, agent_id))
    for summary in held.conversations:
        label = f"{literal(summary.title)}  ·  {summary.turns}"
        st.button(label, key=f"conv_{summary.id}", width="stretch",
                  type="primary" if summary.id == held.conversation_id else "secondary",
                  on_click=_switch, args=(summary.id,))
