"""Vibe page (placeholder until its issue lands)."""

import streamlit as st

from ui.frame import page

with page("vibe") as user:
    st.title("Vibe")
    st.info("Coming soon.")
