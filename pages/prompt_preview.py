"""Prompt Preview page (placeholder until its issue lands)."""

import streamlit as st

from ui.frame import page

with page("prompt_preview") as user:
    st.title("Prompt Preview")
    st.info("Coming soon.")
