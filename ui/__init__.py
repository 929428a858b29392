"""Streamlit-side helpers shared by the entry script and the pages (the only UI code outside pages/)."""
