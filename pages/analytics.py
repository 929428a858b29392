"""Analytics page (placeholder until its issue lands)."""

import streamlit as st

from ui.frame import page

with page("analytics") as user:
    st.title("Analytics")
    st.info("Coming soon.")
