"""Status page (placeholder until its issue lands)."""

import streamlit as st

from ui.frame import page

with page("status") as user:
    st.title("Status")
    st.info("Coming soon.")
