"""The search page's view: the search box, and each result as a link into the chat at that turn.

A result links to the chat page with ``?conversation=<id>&run=<id>`` (``ui.held_chat.link_params``;
only ``conversation`` when a title matched); the chat page opens that conversation at that turn.
Titles and snippets are user and model text: shown through ``ui.text`` as typed, never as Markdown.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import streamlit as st
from pydantic import ValidationError

from core.search import SearchHit, SearchResults, search_conversations
from models.schemas import MAX_SEARCH_CHARS, SearchIn, field_errors
from ui.held_chat import link_params
from ui.text import literal, literal_highlighted, typing_limit

QUERY_KEY = "search_query"
WHERE = {"title": "Conversation title", "message": "Your message", "answer": "Answer"}


def _result(hit: SearchHit, chat_page: Path, index: int) -> None:
    with st.container(border=True, key=f"search_hit_{index}"):
        st.page_link(
            chat_page,
            label=literal(hit.conversation_title),
            icon=":material/forum:",
            query_params=link_params(hit.conversation_id, hit.run_id),
        )
        st.caption(f"{WHERE[hit.matched_in]} · {hit.created_at:%Y-%m-%d %H:%M} UTC")
        if hit.matched_in != "title":
            st.markdown(literal_highlighted((p.text, p.matched) for p in hit.snippet))


def _summary(results: SearchResults) -> str:
    turns = sum(1 for h in results.hits if h.run_id is not None)
    titles = len(results.hits) - turns
    text = f"{turns} turn{'s' if turns != 1 else ''}"
    if titles:
        text = f"{titles} conversation title{'s' if titles != 1 else ''} and " + text
    if results.more:
        text += " (the newest shown: add a word to narrow the search)"
    return text + ", newest first."


def render_search(user_id: uuid.UUID, *, chat_page: Path) -> None:
    """The search box and, once something was typed, its results."""
    typed = st.text_input(
        "Search your conversations",
        key=QUERY_KEY,
        max_chars=typing_limit(MAX_SEARCH_CHARS),  # a longer query reaches the check and its message
        placeholder="Words from a title, a message or an answer",
        icon=":material/search:",
    )
    if not typed.strip():
        st.caption("Every word must appear; other forms of a word count too (“plans” finds “planning”).")
        return
    try:
        query = SearchIn(query=typed)
    except ValidationError as exc:
        st.error(field_errors(exc).get("query", "Type a word to search for."), icon=":material/error:")
        return
    results = search_conversations(user_id=user_id, query=query)
    if not results.hits:
        st.info("Nothing in your conversations matches all of these words.", icon=":material/search_off:")
        return
    st.caption(_summary(results))
    for index, hit in enumerate(results.hits):
        _result(hit, chat_page, index)
