"""Chat: conversations, their history, and streamed answers with their cost and provenance."""

from __future__ import annotations

import uuid

import streamlit as st

from core.chat import TurnRejected, TurnResult, run_turn
from core.conversations import create_conversation, history, list_conversations, rename_conversation
from core.db import NotFound
from core.request_context import request_context
from core.settings import get_settings
from models import AgentRun
from models.schemas import ConversationIn, RenameIn, field_errors
from ui.chat_view import agent_choices, meta_line
from ui.frame import page
from ui.messages import render_answer, render_user_text, stream_answer
from ui.text import literal

OPEN_KEY = "chat_open_conversation"
LIMIT_KEY = "chat_history_limit"
RETRY_KEY = "chat_retry_text"
PAGE_SIZE = 50


def _retry(text: str) -> None:
    """Button callback (runs before the next script run): send ``text`` again."""
    st.session_state[RETRY_KEY] = text


with page("chat") as user:
    settings = get_settings()
    st.title("Chat")
    if settings.provider_order == ["demo"]:
        st.info(
            "**Offline demo mode.** No AI provider is configured, so answers come from Advisor's built-in "
            "demo provider (no network, no cost). Set `ADVISOR_OPENAI_API_KEY` or "
            "`ADVISOR_ANTHROPIC_API_KEY` to talk to a real model.",
            icon=":material/info:",
        )

    agents = agent_choices()
    conversations = list_conversations(user_id=user.id)
    with st.sidebar:
        st.subheader("Conversations")
        with st.popover("New conversation", icon=":material/add:", width="stretch"):
            agent_id = st.selectbox(
                "Advisor mode", options=list(agents), format_func=lambda a: agents[a][0], key="new_conv_agent"
            )
            st.caption(agents[agent_id][1])
            if st.button("Start", type="primary", key="new_conv_start"):
                conv = create_conversation(user_id=user.id, data=ConversationIn(agent=agent_id))
                st.session_state[OPEN_KEY] = conv.id
                st.session_state[LIMIT_KEY] = PAGE_SIZE
                st.rerun()
        for summary in conversations:
            label = f"{literal(summary.title)}  ·  {summary.turns}"
            is_open = st.session_state.get(OPEN_KEY) == summary.id
            if st.button(label, key=f"conv_{summary.id}", width="stretch",
                         type="primary" if is_open else "secondary"):
                st.session_state[OPEN_KEY] = summary.id
                st.session_state[LIMIT_KEY] = PAGE_SIZE
                st.rerun()

    open_id: uuid.UUID | None = st.session_state.get(OPEN_KEY)
    if open_id is None or all(c.id != open_id for c in conversations):
        if not conversations:
            conv = create_conversation(user_id=user.id, data=ConversationIn(agent="general"))
            conversations = list_conversations(user_id=user.id)
        open_id = conversations[0].id
        st.session_state[OPEN_KEY] = open_id
    current = next(c for c in conversations if c.id == open_id)

    head, tools = st.columns([4, 1])
    head.header(literal(current.title))
    head.caption(f"Advisor mode: {agents.get(current.agent, (current.agent, ''))[0]}")
    with tools.popover("Rename", icon=":material/edit:"):
        # keyed by the stored title too: when it changes (the first message titles the conversation),
        # the box starts from the new title instead of keeping the one it was first drawn with
        new_title = st.text_input("Title", value=current.title, max_chars=120, key=f"rename_{open_id}_{current.title}")
        if st.button("Save title", key=f"rename_save_{open_id}"):
            try:
                rename_conversation(user_id=user.id, data=RenameIn(conversation_id=open_id, title=new_title))
                st.rerun()
            except ValueError as exc:
                st.error(field_errors(exc).get("title", "Invalid title"))

    limit = int(st.session_state.get(LIMIT_KEY, PAGE_SIZE))
    try:
        past = history(user_id=user.id, conversation_id=open_id, limit=limit)
    except NotFound:
        st.session_state.pop(OPEN_KEY, None)
        st.rerun()
    if past.has_earlier and st.button("Load earlier messages", icon=":material/expand_less:"):
        st.session_state[LIMIT_KEY] = limit + PAGE_SIZE
        st.rerun()
    if not past.runs:
        st.caption("Ask anything about your team, stack, roadmap or numbers — the answer is tuned to your "
                   "profile and vibe.")

    run: AgentRun
    for run in past.runs:
        with st.chat_message("user"):
            render_user_text(run.user_message)
        with st.chat_message("assistant"):
            if run.output:
                render_answer(run.output)
            if run.status == "pending":
                st.caption("Answer in progress…")
            elif run.status != "ok":
                st.warning(f"This answer did not complete ({run.error_code or run.status}). "
                           f"Reference {run.request_id}.", icon=":material/warning:")
                if run is past.runs[-1]:
                    st.button("Retry", key=f"retry_{run.id}", icon=":material/refresh:", on_click=_retry,
                              args=(run.user_message,))
            st.caption(meta_line(run))

    prompt = st.chat_input("Ask your advisor…", max_chars=settings.max_message_chars)
    retry = st.session_state.pop(RETRY_KEY, None)
    text = prompt or retry
    if text:
        with request_context(page="chat") as rid:
            try:
                turn = run_turn(user_id=user.id, conversation_id=open_id, text=text, request_id=rid)
            except TurnRejected as exc:
                st.warning(exc.message, icon=":material/block:")
            else:
                try:  # a rerun can arrive at any Streamlit call below: close() records the turn then
                    with st.chat_message("user"):
                        render_user_text(text)
                    with st.chat_message("assistant"):
                        stream_answer(turn)
                        result: TurnResult = turn.result
                        if result.status == "ok":
                            st.rerun()  # redraw from the database: sidebar counts, the new title
                        else:
                            st.error(result.user_message, icon=":material/error:")
                            st.button("Retry", key=f"retry_{result.run_id}", icon=":material/refresh:",
                                      on_click=_retry, args=(text,))
                        st.caption(meta_line(result))
                finally:
                    turn.close()
