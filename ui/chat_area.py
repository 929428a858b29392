"""The chat page's working area: one ``st.fragment`` with the header, the sidebar's conversation
list, the history and the live turn.

A message sent, a conversation opened, a button pressed here reruns only this fragment: not the page
router (boot, gate, navigation) and not the rest of the page.

What is read from the database, and when:

* the conversation list and the open conversation's history are read on the page's full run (a page
  load, a navigation to the chat) and when the conversation changes (``open_conversation``,
  ``forget_history``). Between those, each run of the fragment draws them from what the session
  holds (``HeldChat``), with every answer's Markdown rendered once;
* a turn: ``core.chat.run_turn`` stores the message (committed before any provider is called) and
  the answer streams. Once the turn is closed (its row finished), that one run is read back by id and
  added to the held history, and the conversation list is read again for the title and the count. A
  turn cut short (Stop, a rerun, a closed tab) marks the held history stale instead: the next run reads it.

One run of the fragment, top to bottom: the header and the sidebar list get their places; the
history is drawn, each turn as its latest version (earlier versions in an expander); the chat input
(pinned to the bottom), or an edit, a regeneration or a Retry (``ui.chat_actions``: a new version of
the last turn) gives the text of a new turn, which is shown and streamed; last, the header and the
sidebar list are filled, so that after a turn they show its title and count without another run.

Stop is the chat input's own stop control (``submit_mode="stop"``): it stops the script run, the
live turn's ``finally`` closes the turn (``interrupted`` / ``cancelled``, the partial answer kept)
and forgets the held history, so the next run reads the stopped turn back.

Hook points for controls. Each is called inside the fragment, so a widget placed there reruns only
the fragment; state a control changes is read on that rerun. A control that changes stored runs or
conversations calls ``forget_history()`` so that the rerun reads them again.

* ``conversation_controls(summary)``: beside the title (rename, export, delete).
* ``user_message_controls(run, last=...)``: under each shown user message (edit).
* ``answer_controls(run, last=..., user_id=...)``: under each shown answer (regenerate, copy, feedback).
* ``live_turn_controls(turn)``: beside the answer while it streams.
* ``open_conversation(conversation_id, run_id=None)``: show a conversation (a deep link, a search hit).
  ``open_linked_conversation()`` does it for the page's link ``?conversation=<id>&run=<id>``
  (``link_params``); the run asked for is loaded into the history and marked.
* ``forget_history()``: drop what the session holds; the next run reads the database.

The page calls ``core.chat`` and ``core.conversations`` through their modules (``chat.run_turn``),
so a test that replaces one of their functions reaches this module as well.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import streamlit as st

from core import chat, conversations
from core.conversations import ConversationSummary
from core.db import NotFound
from core.request_context import request_context
from core.run_versions import TurnVersions, group_versions
from core.settings import get_settings
from models import AgentRun
from models.schemas import MAX_TITLE, ConversationIn, RenameIn, field_errors
from ui import chat_actions
from ui.chat_view import agent_choices, meta_line, run_notice
from ui.feedback import feedback_control
from ui.frame import SignedInUser, guarded
from ui.messages import answer_markdown, render_user_text, stream_answer
from ui.text import literal, typing_limit

FRAGMENT_KEY = "chat_area"  # st.rerun("chat_area") from a widget callback reruns this fragment only
HELD_KEY = "chat_held"
OPEN_KEY = "chat_open_conversation"
FOCUS_KEY = "chat_focus_run"
RELOAD_KEY = "chat_reload"
RENAME_ERROR_KEY = "chat_rename_error"
PAGE_SIZE = 50
CONVERSATION_PARAM = "conversation"
RUN_PARAM = "run"


@dataclass
class HeldChat:
    """What the session holds of the chat between runs of the fragment (the database is the truth:
    this is what was last read from it, plus the turns finished since)."""

    user_id: uuid.UUID
    conversations: list[ConversationSummary]
    conversation_id: uuid.UUID | None = None
    runs: list[AgentRun] = field(default_factory=list)  # oldest first, at most ``limit``
    has_earlier: bool = False
    limit: int = PAGE_SIZE
    answers: dict[uuid.UUID, str] = field(default_factory=dict)  # run id → the answer's Markdown
    stale: bool = False  # a turn was cut short: the next run reads the list and history again

    def add_run(self, run: AgentRun) -> None:
        """A turn finished on this page: shown from now on as history (the oldest beyond ``limit``
        move behind "Load earlier messages")."""
        self.runs = [r for r in self.runs if r.id != run.id] + [run]
        if len(self.runs) > self.limit:
            for old in self.runs[: len(self.runs) - self.limit]:
                self.answers.pop(old.id, None)
            self.runs = self.runs[-self.limit :]
            self.has_earlier = True

    def answer(self, run: AgentRun) -> str:
        """The Markdown shown for ``run``'s answer, rendered once (``ui.messages.answer_markdown``)."""
        shown = self.answers.get(run.id)
        if shown is None:
            shown = self.answers[run.id] = answer_markdown(run.output)
        return shown


# --- hook points ---------------------------------------------------------------------------------
def open_conversation(conversation_id: uuid.UUID, run_id: uuid.UUID | None = None) -> None:
    """Show ``conversation_id`` from the next run of the fragment on (its history is read then).

    ``run_id``: the run the user came for (a search hit, a deep link ``?conversation=…&run=…``);
    ``focused_run()`` returns it until another conversation is opened. Safe in a widget callback.
    The id is checked against the user's conversations when the fragment runs: another user's id
    shows the user's own newest conversation instead.
    """
    st.session_state[OPEN_KEY] = conversation_id
    st.session_state[FOCUS_KEY] = run_id
    held: HeldChat | None = st.session_state.get(HELD_KEY)
    if held is not None:
        held.conversation_id = None
        held.limit = PAGE_SIZE


def link_params(conversation_id: uuid.UUID, run_id: uuid.UUID | None = None) -> dict[str, str]:
    """The chat page's query parameters that open ``conversation_id`` (at ``run_id``)."""
    params = {CONVERSATION_PARAM: str(conversation_id)}
    if run_id is not None:
        params[RUN_PARAM] = str(run_id)
    return params


def _uuid_param(name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(st.query_params.get(name, ""))
    except ValueError:
        return None


def open_linked_conversation() -> None:
    """Open what the page's link names (``link_params``), then drop the parameters: a later full run
    of the page (a navigation back) shows the conversation the user moved on to. A malformed id, or
    another user's, opens the user's own newest conversation instead (``open_conversation``)."""
    if CONVERSATION_PARAM not in st.query_params:
        return
    conversation_id = _uuid_param(CONVERSATION_PARAM)
    if conversation_id is not None:
        open_conversation(conversation_id, _uuid_param(RUN_PARAM))
    for name in (CONVERSATION_PARAM, RUN_PARAM):
        st.query_params.pop(name, None)


def focused_run() -> uuid.UUID | None:
    """The run ``open_conversation`` was asked to show, if any."""
    value = st.session_state.get(FOCUS_KEY)
    return value if isinstance(value, uuid.UUID) else None


def forget_history() -> None:
    """Drop what the session holds (conversation list and history): the next run of the fragment
    reads both from the database. Call it after changing stored runs or conversations. Safe in a
    widget callback."""
    st.session_state.pop(HELD_KEY, None)


def conversation_controls(summary: ConversationSummary, user: SignedInUser) -> None:
    """Controls for the open conversation, in the header beside its title (called once per run of
    the fragment, after the turn if there was one, so ``summary`` has its latest title and count):
    Rename, then Export and Delete (``ui.chat_actions``)."""
    with st.popover("Rename", icon=":material/edit:"):
        # keyed by the stored title too: when it changes (the first message titles the conversation),
        # the box starts from the new title instead of keeping the one it was first drawn with
        box = f"rename_{summary.id}_{summary.title}"
        st.text_input("Title", value=summary.title, max_chars=typing_limit(MAX_TITLE), key=box)
        st.button("Save title", key=f"rename_save_{summary.id}", on_click=_rename,
                  args=(user.id, summary.id, box))
        if problem := st.session_state.pop(RENAME_ERROR_KEY, None):
            st.error(problem)
    chat_actions.conversation_controls(summary, user.id, forget_history)


def _rename(user_id: uuid.UUID, conversation_id: uuid.UUID, box: str) -> None:
    """Save title's callback: the title is stored before the fragment reruns and reads the list."""
    try:
        conversations.rename_conversation(
            user_id=user_id, data=RenameIn(conversation_id=conversation_id, title=st.session_state[box]))
    except ValueError as exc:
        st.session_state[RENAME_ERROR_KEY] = next(iter(field_errors(exc).values()))
    else:
        forget_history()


def user_message_controls(run: AgentRun, *, last: bool) -> None:
    """Controls under a user message (edit): called inside its ``st.chat_message("user")`` after
    the text, for each turn of the history and, once it has finished, for the live turn. ``last``:
    the conversation's newest turn."""
    chat_actions.user_message_controls(run, last=last)


def answer_controls(run: AgentRun, *, last: bool, user_id: uuid.UUID) -> None:
    """Controls under an answer (regenerate, copy, feedback): called inside its
    ``st.chat_message("assistant")`` after the answer and its status notice, before the metadata
    line, for each turn of the history and, once it has finished, for the live turn. ``last``: the
    conversation's newest turn; ``user_id``: the signed-in user."""
    chat_actions.answer_controls(run, last=last)
    feedback_control(user_id, run, on_saved=forget_history)


def live_turn_controls(turn: chat.Turn) -> None:
    """Controls shown while an answer streams: called inside the live turn's
    ``st.chat_message("assistant")`` just before the stream starts, in the same fragment as the
    stream. None today. Stop is not here: a click on a widget inside a running fragment is queued
    until the run ends, so it cannot end the stream; the chat input's stop control does (it stops
    the script run at once)."""


# --- the fragment --------------------------------------------------------------------------------
def chat_page(user: SignedInUser) -> None:
    """The page's full run: what the session holds is read again, then the fragment runs."""
    st.session_state[RELOAD_KEY] = True
    chat_area(user)


@st.fragment(key=FRAGMENT_KEY)
def chat_area(user: SignedInUser) -> None:
    """Header, sidebar list, history and live turn; see the module docstring."""
    with guarded("chat"):  # a fragment rerun runs outside the page's frame: the same frame again
        chat_actions.deleted_notice()
        held = _held(user)
        current = next(c for c in held.conversations if c.id == held.conversation_id)
        header = st.container()
        side = st.sidebar.container()
        with st.bottom:  # read first (it is drawn at the bottom wherever it is called)
            prompt = st.chat_input("Ask your advisor…", max_chars=typing_limit(get_settings().max_message_chars),
                                   submit_mode="stop")
        replacement = chat_actions.take_replacement()
        if prompt:
            replacement = None  # a message typed meanwhile goes first; the edit or regeneration is dropped
        replaced = _history(held, replacing=replacement.run_id if replacement else None,
                            live=bool(prompt) or replacement is not None)
        if prompt:
            _live_turn(user, held, prompt)
        elif replacement is not None:
            _live_turn(user, held, replacement.text, replaces=replaced)
        if prompt or replacement is not None:
            current = next((c for c in held.conversations if c.id == current.id), current)
        with header:
            _header(user, current)
        with side:
            _sidebar(user, held)


def _held(user: SignedInUser) -> HeldChat:
    """What the session holds, read from the database where it is missing or stale."""
    held: HeldChat | None = st.session_state.get(HELD_KEY)
    if st.session_state.pop(RELOAD_KEY, False) or held is None or held.user_id != user.id or held.stale:
        held = _read_list(user)
    while True:
        open_id: uuid.UUID | None = st.session_state.get(OPEN_KEY)
        if open_id is None or all(c.id != open_id for c in held.conversations):
            if not held.conversations:
                conversations.create_conversation(user_id=user.id, data=ConversationIn(agent="general"))
                held = _read_list(user)
            open_id = held.conversations[0].id
            st.session_state[OPEN_KEY] = open_id
        if held.conversation_id == open_id:
            return held
        try:
            past = conversations.history(user_id=user.id, conversation_id=open_id, limit=held.limit)
            focus = focused_run()
            while focus is not None and past.has_earlier and all(r.id != focus for r in past.runs):
                held.limit += PAGE_SIZE  # the run asked for is older: load back to it
                past = conversations.history(user_id=user.id, conversation_id=open_id, limit=held.limit)
        except NotFound:  # deleted meanwhile (in another tab): start again from the list
            st.session_state.pop(OPEN_KEY, None)
            held = _read_list(user)
            continue
        held.conversation_id, held.runs, held.has_earlier = open_id, past.runs, past.has_earlier
        held.answers = {}
        return held


def _read_list(user: SignedInUser) -> HeldChat:
    held = HeldChat(user_id=user.id, conversations=conversations.list_conversations(user_id=user.id))
    st.session_state[HELD_KEY] = held
    return held


def _load_earlier() -> None:
    held: HeldChat | None = st.session_state.get(HELD_KEY)
    if held is not None:
        held.limit += PAGE_SIZE
        held.conversation_id = None


def _history(held: HeldChat, *, replacing: uuid.UUID | None = None, live: bool = False) -> TurnVersions | None:
    """Draw the held history, each turn as its latest run. ``replacing``: the last run, about to be
    replaced by a new version (an edit, a regeneration, a Retry): it is not drawn, and returned with
    its earlier versions (None if it is not the last turn shown: the turn then refuses it).
    ``live``: a turn follows in this run, so no turn drawn here is the last one."""
    if held.has_earlier:
        st.button("Load earlier messages", icon=":material/expand_less:", on_click=_load_earlier)
    turns = group_versions(held.runs)
    replaced = turns.pop() if turns and replacing is not None and turns[-1].run.id == replacing else None
    if not turns and replaced is None:
        st.caption("Ask anything about your team, stack, roadmap or numbers — the answer is tuned to your "
                   "profile and vibe.")
    last = turns[-1].run.id if turns and not live else None
    focus = focused_run()
    for turn in turns:
        run = turn.run
        if run.id == focus:
            st.caption("Found by your search:")
        with st.chat_message("user"):
            render_user_text(run.user_message)
            user_message_controls(run, last=run.id == last)
        with st.chat_message("assistant"):
            if run.output:
                st.markdown(held.answer(run))
            _status_notice(run, last=run.id == last)
            answer_controls(run, last=run.id == last, user_id=held.user_id)
            chat_actions.earlier_versions(turn.earlier)
            st.caption(meta_line(run))
    return replaced


def _status_notice(run: AgentRun, *, last: bool) -> None:
    notice = run_notice(run)  # interrupted by a stopped server, still in progress, or failed
    if notice is None:
        return
    if notice.kind == "progress":
        st.caption(notice.text)
    else:
        st.warning(notice.text, icon=":material/warning:")
        if last:  # a new version of this turn (the failed run stays under Earlier versions)
            st.button("Retry", key=f"retry_{run.id}", icon=":material/refresh:",
                      on_click=chat_actions.request_replacement, args=(run.id, run.user_message))


def _live_turn(user: SignedInUser, held: HeldChat, text: str, *, replaces: TurnVersions | None = None) -> None:
    """Store the message, stream the answer, then hold the finished run (see the module docstring).

    ``replaces``: the last turn this one is a new version of (its runs are then earlier versions)."""
    assert held.conversation_id is not None
    with request_context(page="chat") as rid:
        try:
            turn = chat.run_turn(user_id=user.id, conversation_id=held.conversation_id, text=text,
                                 request_id=rid, replaces=replaces.run.id if replaces else None)
        except chat.TurnRejected as exc:
            st.warning(exc.message, icon=":material/block:")
            if replaces is not None:
                forget_history()  # the turn it would replace is drawn again on the next run
            return
        finished = False
        try:  # a rerun can arrive at any Streamlit call below: close() records the turn then
            user_box = st.chat_message("user")
            with user_box:
                render_user_text(text)
            with st.chat_message("assistant"):
                live_turn_controls(turn)
                stream_answer(turn)
                result = turn.result
                if result.status != "ok":
                    st.error(result.user_message, icon=":material/error:")
                    st.button("Retry", key=f"retry_{result.run_id}", icon=":material/refresh:",
                              on_click=chat_actions.request_replacement, args=(result.run_id, text))
                turn.close()
                run = _read_back(user, held, result.run_id, replaces=replaces)
                with user_box:
                    user_message_controls(run, last=True)
                answer_controls(run, last=True, user_id=user.id)
                if replaces is not None:
                    chat_actions.earlier_versions([*replaces.earlier, replaces.run])
                st.caption(meta_line(run))
            finished = True
        finally:
            if not finished:
                # not forget_history(): after the user's Stop every Streamlit call, session state too,
                # raises again; the held object is marked instead, and the next run reads it all
                held.stale = True
            turn.close()


def _read_back(user: SignedInUser, held: HeldChat, run_id: uuid.UUID, *,
               replaces: TurnVersions | None = None) -> AgentRun:
    """The finished run as stored, added to the held history; the conversation list read again
    (title, count). The run it replaced is held as superseded by it, as stored. Should a read fail,
    the caller forgets the held history."""
    run = conversations.get_run(user_id=user.id, run_id=run_id)
    held.conversations = conversations.list_conversations(user_id=user.id)
    if replaces is not None:
        replaces.run.superseded_by = run.id
    held.add_run(run)
    return run


def _header(user: SignedInUser, current: ConversationSummary) -> None:
    agents = agent_choices()
    head, tools = st.columns([4, 1])
    head.header(literal(current.title))
    turns = f"{current.turns} turn{'' if current.turns == 1 else 's'}"
    head.caption(f"Advisor mode: {agents.get(current.agent, (current.agent, ''))[0]} · {turns}")
    with tools:
        conversation_controls(current, user)


def _start(user_id: uuid.UUID, agent_id: str) -> None:
    """Start's callback: the new conversation is stored and opened before the fragment reruns."""
    conv = conversations.create_conversation(user_id=user_id, data=ConversationIn(agent=agent_id))
    forget_history()
    open_conversation(conv.id)


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
                  on_click=open_conversation, args=(summary.id,))
