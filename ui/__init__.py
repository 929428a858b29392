"""Streamlit-side code: the page router (``page_router.py``, the script ``streamlit_app.py`` serves)
and the helpers it shares with the pages (the page frame, sign-in views, small view helpers)."""
