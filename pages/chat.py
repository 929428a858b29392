"""Chat: conversations, their history, and streamed answers with their cost and provenance.

The working area is two fragments (``ui.chat_area``): a message reruns the live one alone, not this
page and not the history."""

from __future__ import annotations

import streamlit as st

from core.settings import get_settings
from ui.chat_area import chat_page
from ui.frame import page
from ui.held_chat import open_linked_conversation

with page("chat") as user:
    st.title("Chat")
    if get_settings().provider_order == ["demo"]:
        st.info(
            "**Offline demo mode.** No AI provider is configured, so answers come from Advisor's built-in "
            "demo provider (no network, no cost). Set `ADVISOR_OPENAI_API_KEY` or "
            "`ADVISOR_ANTHROPIC_API_KEY` to talk to a real model.",
            icon=":material/info:",
        )
    open_linked_conversation()  # ?conversation=<id>&run=<id>: a search result
    chat_page(user)
