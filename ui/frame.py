"""The frame every page runs in: a request id, the signed-in user, and no stack trace ever shown.

``with page("Chat") as user:`` sets a fresh request id for this script run, returns the signed-in
user (the page router's gate guarantees there is one), and turns any unexpected exception into
"Something went wrong — reference <id>" while the log and Sentry get the details.
``report_uncaught_error`` does the same for an error outside any frame (a widget callback, the page
router itself): ``streamlit_app.py`` hands it to ``st.App(on_script_error=...)``.

Streamlit's own control flow (``st.stop``, ``st.rerun``, ``st.switch_page``) raises exceptions that
derive from ``BaseException``, not ``Exception``, so the frame lets them through untouched
(``tests/ui/test_frame.py`` fails if a Streamlit release changes that).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st

from core.error_reports import log_exception
from core.request_context import new_request_id, request_context, user_error_message

SESSION_USER_KEY = "advisor_user"


@dataclass(frozen=True)
class SignedInUser:
    id: uuid.UUID
    email: str
    is_admin: bool
    password_reset_required: bool = False  # an admin forced a reset: a new password comes first


def signed_in_user() -> SignedInUser | None:
    user = st.session_state.get(SESSION_USER_KEY)
    return user if isinstance(user, SignedInUser) else None


def set_signed_in_user(user: SignedInUser | None) -> None:
    if user is None:
        st.session_state.pop(SESSION_USER_KEY, None)
    else:
        st.session_state[SESSION_USER_KEY] = user


def show_error_reference(exc: Exception, *, where: str) -> str:
    """Log ``exc`` (and send it to Sentry) under the current request id; show the user only that id."""
    request_id = log_exception(exc, where=where)
    st.error(user_error_message(request_id), icon=":material/error:")
    return request_id


@contextmanager
def guarded(name: str) -> Iterator[str]:
    """Run a block with a request id; an unexpected error shows only a reference to it."""
    request_id = new_request_id()
    with request_context(request_id, page=name):
        try:
            yield request_id
        except Exception as exc:  # st.stop / st.rerun are BaseExceptions: control flow passes through
            show_error_reference(exc, where=f"page:{name}")


def report_uncaught_error(exc: Exception) -> bool:
    """``st.App``'s ``on_script_error``: an error no frame caught shows a reference, never a trace.

    Returns True: Streamlit then shows nothing of the exception itself.
    """
    with request_context(page="script"):
        show_error_reference(exc, where="script")
    return True


@contextmanager
def page(name: str) -> Iterator[SignedInUser]:
    """The body of a data page: signed-in user required (the gate has already checked)."""
    with guarded(name):
        user = signed_in_user()
        if user is None:  # defence in depth: a page run outside the gate shows nothing
            st.warning("Please sign in.")
            st.stop()
        yield user
