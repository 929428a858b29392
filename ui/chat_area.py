"""The chat page's working area, in two ``st.fragment``s: the history and the live area.

* ``chat_history`` (key ``chat_history``) holds the open conversation's turns, all but the last, as
  they were when it last ran, and shows the newest ``SHOWN_TURNS`` of them (or from a run the user
  came for, a search hit, on); a "Show N earlier turns" button above them shows the rest, "Load
  earlier messages" reads older ones from the database. It runs on the page's full run, when the
  conversation changes, and when it takes turns over from the live area: what it draws, and so what
  a turn costs the page, stays the same size however long the conversation grows.
* ``chat_live`` (key ``chat_live``) holds the chat input (pinned to the bottom), the turns after
  those (always the last one, so the controls of the last turn live here), the live turn, and it
  fills the header (title, turn count) and the sidebar's conversation list. A message, an edit, a
  regeneration or a Retry reruns this fragment alone. When it shows ``LIVE_TURNS`` finished turns,
  the next message reruns the history too, which takes them over but the last. While a turn goes
  live, the finished turns the live area showed stay on screen as they were, each in its place, and
  are drawn again once the answer's first words are out: what the user waits for comes first.

How a turn is drawn, and the per-message hook points for controls (edit; copy, feedback,
regenerate), are in ``ui.chat_turns``: each turn is shown as its latest version, earlier versions
(edits, regenerations, Retries: a new version of the last turn, ``ui.chat_actions``) in an expander.

What is read from the database, and when: the conversation list and the open conversation's history
on the page's full run and when the conversation changes; between those, the fragments draw from
what the session holds (``ui.held_chat.HeldChat``, each answer's Markdown rendered once). A turn: its
message is stored by ``core.chat.run_turn`` (committed before any provider is called) and its answer
streams; then the turn is closed (its row finished) and that one run is read back by id, with the
conversation list (title, count). A turn cut short (Stop, a click, a closed tab) is read back the
same way by the next run of any of these fragments.

Stop is the chat input's own stop control (``submit_mode="stop"``): it stops the script run, and
the live turn's ``finally`` closes the turn (``interrupted`` / ``cancelled``, the partial answer kept).
(A message that hands turns to the history reruns it too, from the chat input's callback; the chat
input then shows no stop control for that one turn.)

Hook points:

* ``conversation_controls(summary, user)``: in the header beside the title (rename, export, delete).
* ``ui.held_chat.open_conversation(conversation_id, run_id=None)``: show a conversation (a deep
  link, a search hit). ``open_linked_conversation()`` does it for the page's link
  ``?conversation=<id>&run=<id>`` (``link_params``); the run asked for is loaded into the history
  and marked.
* ``ui.held_chat.forget_history()``: drop what the session holds; the next run reads the database.
* ``ui.held_chat.rerun_chat()`` (widget callbacks only): rerun every fragment here, after the
  callback changed what the history shows (a conversation opened or deleted, earlier runs changed).

A widget reruns only the fragment that drew it. A control on the last turn or in the header is in
the live area; a control on an earlier turn is in the history, and its callback calls
``rerun_chat()`` if what it changed must be drawn again.

The page calls ``core.conversations`` through its module, so a test that replaces one of its
functions reaches this module as well.
"""

from __future__ import annotations

import uuid

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core import conversations
from core.conversations import ConversationSummary
from core.run_versions import NotReplaceable, TurnVersions
from core.settings import get_settings
from models.schemas import MAX_TITLE, ConversationIn, RenameIn, field_errors
from ui import chat_actions
from ui.chat_turns import live_turn, past_turn
from ui.chat_view import agent_choices
from ui.frame import SignedInUser, guarded
from ui.held_chat import (
    HELD_KEY,
    HISTORY_KEY,
    LIVE_KEY,
    OPEN_KEY,
    PAGE_SIZE,
    RELOAD_KEY,
    HeldChat,
    catch_up,
    focused_run,
    forget_and_rerun,
    forget_history,
    load_held,
    open_conversation,
    rerun_chat,
    show_all_turns,
    shows_all_turns,
)
from ui.text import literal, typing_limit

RENAME_ERROR_KEY = "chat_rename_error"
HISTORY_OK_KEY = "chat_history_ok"
LIVE_TURNS = 10  # finished turns the live area shows before the history takes them over
HINT = "Ask anything about your team, stack, roadmap or numbers — the answer is tuned to your profile and vibe."


# --- hook points ---------------------------------------------------------------------------------
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
    chat_actions.conversation_controls(summary, user.id, forget_and_rerun)


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
        turns = held.history_turns(show_all=shows_all_turns(), focus=focused_run())
        if held.shown_from:
            hidden = held.shown_from
            st.button(f"Show {hidden} earlier turn{'' if hidden == 1 else 's'}", icon=":material/expand_less:",
                      on_click=_show_earlier)
        elif held.has_earlier:
            st.button("Load earlier messages", icon=":material/expand_less:", on_click=_load_earlier)
        for turn in turns:
            past_turn(held, turn, last=False)
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
                    past_turn(held, turn, last=last)

        for i, turn in enumerate(newer):
            last = i == len(newer) - 1 and not live
            if i < len(held.live_shown) and held.live_shown[i] == turn.run.id:
                kept.append((st.container(), turn, last))
                if not live:
                    draw_kept()
            else:
                with st.empty().container():
                    past_turn(held, turn, last=last)
        slot = st.empty()
        for _ in range(len(newer) + 1, held.live_places):
            st.empty()  # a place the last run used and this one does not (the history took its turn)
        held.live_places = len(newer) + 1
        held.live_shown = [turn.run.id for turn in newer]

        if hint:
            slot.caption(HINT)
        elif prompt:
            with slot.container():
                live_turn(user, held, prompt, first_words=draw_kept)
        elif replacement is not None:
            with slot.container():
                if replaced is None:  # not the last turn (any more): nothing is sent
                    st.warning(NotReplaceable().message, icon=":material/block:")
                else:
                    live_turn(user, held, replacement.text, replaces=replaced, first_words=draw_kept)
        draw_kept()
        current = next(c for c in held.conversations if c.id == held.conversation_id)
        with header:
            _header(user, current)
        with st.sidebar.container():
            _sidebar(user, held)


def _submitted() -> None:
    """The chat input's callback: a live area that shows ``LIVE_TURNS`` finished turns hands them
    but the last to the history on this run (both rerun); otherwise the live area reruns alone."""
    held: HeldChat | None = st.session_state.get(HELD_KEY)
    if held is not None and held.drawn is not None and len(held.turns()) + len(held.unread) - held.drawn >= LIVE_TURNS:
        show_all_turns(False)  # the history shows the newest turns again
        rerun_chat()


def _show_earlier() -> None:
    """Show every turn the history holds (until it next takes turns over from the live area, or
    another conversation is opened). The history takes the live area's turns over as it reruns, so
    both rerun."""
    show_all_turns(True)
    rerun_chat()


def _load_earlier() -> None:
    held: HeldChat | None = st.session_state.get(HELD_KEY)
    if held is not None:
        held.limit += PAGE_SIZE
        held.conversation_id = None
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
