"""Admin page (placeholder until its issue lands)."""

import streamlit as st

from ui.frame import page

with page("admin") as user:
    st.title("Admin")
    st.info("Coming soon.")
