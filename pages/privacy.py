"""Privacy page (placeholder until its issue lands)."""

import streamlit as st

from ui.frame import page

with page("privacy") as user:
    st.title("Privacy")
    st.info("Coming soon.")
