"""Chat page (placeholder until its issue lands)."""

import streamlit as st

from ui.frame import page

with page("chat") as user:
    st.title("Chat")
    st.info("Coming soon.")
