"""Search: one box over the titles, messages and answers of your conversations; a result opens the
chat at that turn."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui.frame import page
from ui.search_view import render_search

with page("search") as user:
    st.title("Search")
    render_search(user.id, chat_page=Path(__file__).with_name("chat.py"))
