"""Advisor core: pure Python, no Streamlit import anywhere below here."""

__version__ = "0.1.0"
