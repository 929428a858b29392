"""What the chat page's session holds between runs of its fragments, and which conversation it shows.

``HeldChat`` is what was last read from the database (the conversation list, the open
conversation's runs, each answer's Markdown rendered once) plus the turns finished since;
``load_held`` reads what is missing or stale, ``catch_up`` reads back the turns stored since.
``open_conversation`` / ``open_linked_conversation`` (``?conversation=<id>&run=<id>``, built by
``link_params``) choose the conversation the history shows next; ``forget_history`` drops it all, so
the next run reads the database. The fragments that draw it are ``ui.chat_area``; ``rerun_chat``
(from a widget callback) reruns them all after something changed what the history shows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import streamlit as st

from core import conversations
from core.conversations import ConversationSummary
from core.db import NotFound
from core.run_versions import TurnVersions, group_versions
from models import AgentRun
from models.schemas import ConversationIn
from ui.frame import SignedInUser
from ui.messages import answer_markdown

HISTORY_KEY = "chat_history"  # fragment keys (ui.chat_area), for st.rerun([...]) from a widget callback
LIVE_KEY = "chat_live"
HELD_KEY = "chat_held"
OPEN_KEY = "chat_open_conversation"
FOCUS_KEY = "chat_focus_run"
SHOW_ALL_KEY = "chat_show_all"  # the conversation whose history shows every held turn
RELOAD_KEY = "chat_reload"
PAGE_SIZE = 50
SHOWN_TURNS = 10  # finished turns the history shows when it takes over; earlier ones behind a button
CONVERSATION_PARAM = "conversation"
RUN_PARAM = "run"


@dataclass
class HeldChat:
    """What the session holds of the chat between runs of its fragments (the database is the truth:
    this is what was last read from it, plus the turns finished since)."""

    user_id: uuid.UUID
    conversations: list[ConversationSummary]
    conversation_id: uuid.UUID | None = None
    runs: list[AgentRun] = field(default_factory=list)  # oldest first
    has_earlier: bool = False
    limit: int = PAGE_SIZE
    drawn: int | None = None  # the first ``drawn`` turns are the history fragment's
    take_over_due: bool = True  # the history takes the turns over on its next run (``rerun_chat``)
    shown_from: int = 0  # the history shows its turns from this one on (earlier: "Show earlier turns")
    # the live area's last run (``ui.chat_area``): the turn it showed in each place, how many places
    live_shown: list[uuid.UUID] = field(default_factory=list)
    live_places: int = 0
    unread: list[uuid.UUID] = field(default_factory=list)  # turns stored here, not read back yet
    list_stale: bool = False
    answers: dict[uuid.UUID, str] = field(default_factory=dict)  # run id → the answer's Markdown

    def add_run(self, run: AgentRun) -> None:
        """A turn of this conversation finished on this page: shown from now on."""
        self.runs = [r for r in self.runs if r.id != run.id] + [run]

    def turns(self) -> list[TurnVersions]:
        """The held runs as turns: each latest version with its earlier ones (``core.run_versions``)."""
        return group_versions(self.runs)

    def take_over(self, *, show_all: bool = False, focus: uuid.UUID | None = None) -> list[TurnVersions]:
        """The turns the history fragment takes now: all but the last (the held runs kept to the
        newest ``limit``; older ones move behind "Load earlier messages"). It shows them all with
        ``show_all``, else the newest ``SHOWN_TURNS`` of them, or from the run ``focus`` on if that is
        earlier (``shown_from``): what the page draws stays the same size however long the
        conversation is."""
        if len(self.runs) > self.limit:
            for old in self.runs[: len(self.runs) - self.limit]:
                self.answers.pop(old.id, None)
            self.runs = self.runs[-self.limit :]
            self.has_earlier = True
        turns = self.turns()
        self.drawn = max(len(turns) - 1, 0)
        self.shown_from = 0 if show_all else max(self.drawn - SHOWN_TURNS, 0)
        self.take_over_due = False
        ids = [turn.run.id for turn in turns[: self.drawn]]
        if focus in ids:
            self.shown_from = min(self.shown_from, ids.index(focus))
        return turns[: self.drawn]

    def history_turns(self, *, show_all: bool = False, focus: uuid.UUID | None = None) -> list[TurnVersions]:
        """The turns the history fragment shows on this run: those it takes over now
        (``take_over``) when that is due, else the same ones as on its last run (a control on an
        earlier turn reruns the history alone, while the live area keeps showing its turns)."""
        if self.take_over_due or self.drawn is None:
            turns = self.take_over(show_all=show_all, focus=focus)
        else:
            turns = self.turns()[: self.drawn]
        return turns[self.shown_from :]

    def answer(self, run: AgentRun) -> str:
        """The Markdown shown for ``run``'s answer, rendered once (``ui.messages.answer_markdown``)."""
        shown = self.answers.get(run.id)
        if shown is None:
            shown = self.answers[run.id] = answer_markdown(run.output)
        return shown


def open_conversation(conversation_id: uuid.UUID, run_id: uuid.UUID | None = None) -> None:
    """Show ``conversation_id`` from the next run of the history on (its turns are read then).

    ``run_id``: the run the user came for (a search hit, a deep link ``?conversation=…&run=…``);
    ``focused_run()`` returns it until another conversation is opened. In the page's body before
    ``chat_page``, or in a widget callback followed by ``rerun_chat()``. The id is checked against
    the user's conversations when the history runs: another user's id shows the user's own newest
    conversation instead.
    """
    st.session_state[OPEN_KEY] = conversation_id
    st.session_state[FOCUS_KEY] = run_id
    st.session_state.pop(SHOW_ALL_KEY, None)
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


def show_all_turns(show: bool) -> None:
    """Whether the history shows every held turn of the open conversation, from its next run on,
    or only the newest (``HeldChat.take_over``). Forgetting what the session holds keeps it; opening
    a conversation ends it."""
    if show:
        st.session_state[SHOW_ALL_KEY] = st.session_state.get(OPEN_KEY)
    else:
        st.session_state.pop(SHOW_ALL_KEY, None)


def shows_all_turns() -> bool:
    """``show_all_turns(True)`` was asked for the open conversation."""
    shown = st.session_state.get(SHOW_ALL_KEY)
    return shown is not None and shown == st.session_state.get(OPEN_KEY)


def focused_run() -> uuid.UUID | None:
    """The run ``open_conversation`` was asked to show, if any."""
    value = st.session_state.get(FOCUS_KEY)
    return value if isinstance(value, uuid.UUID) else None


def forget_history() -> None:
    """Drop what the session holds (conversation list and history): the next run reads both from
    the database. Call it after changing stored runs or conversations; in a widget callback, follow
    it with ``rerun_chat()``."""
    st.session_state.pop(HELD_KEY, None)


def load_held(user: SignedInUser) -> HeldChat:
    """What the session holds, read from the database where it is missing or stale."""
    held: HeldChat | None = st.session_state.get(HELD_KEY)
    if st.session_state.pop(RELOAD_KEY, False) or held is None or held.user_id != user.id:
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
        held.answers, held.unread, held.drawn = {}, [], None
        return held


def _read_list(user: SignedInUser) -> HeldChat:
    held = HeldChat(user_id=user.id, conversations=conversations.list_conversations(user_id=user.id))
    st.session_state[HELD_KEY] = held
    return held


def catch_up(user: SignedInUser, held: HeldChat) -> None:
    """Read back the turns stored on this page since the last read (finished by now: each was
    closed), and the conversation list with their titles and counts."""
    if not held.unread and not held.list_stale:
        return
    for run_id in list(held.unread):
        held.add_run(conversations.get_run(user_id=user.id, run_id=run_id))
        held.unread.remove(run_id)
    held.conversations = conversations.list_conversations(user_id=user.id)
    held.list_stale = False


def rerun_chat() -> None:
    """From a widget callback only: rerun the history and the live area (not only the fragment that
    drew the widget), e.g. after ``open_conversation`` or ``forget_history``. The history takes
    the live area's finished turns over but the last."""
    held: HeldChat | None = st.session_state.get(HELD_KEY)
    if held is not None:
        held.take_over_due = True
    st.rerun([HISTORY_KEY, LIVE_KEY])


def forget_and_rerun() -> None:
    """For a callback that changed stored runs or conversations (Delete, feedback): read again, and
    draw everything again."""
    forget_history()
    rerun_chat()
