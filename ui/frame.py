"""The frame every page runs in: a request id, the signed-in user, and no stack trace ever shown.

``with page("Chat") as user:`` sets a fresh request id for this script run, returns the signed-in
user (the entry script's gate guarantees there is one), and turns any unexpected exception into
"Something went wrong — reference <id>" while the log and Sentry get the details.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException

from core.error_reports import log_exception
from core.request_context import new_request_id, request_context, user_error_message

SESSION_USER_KEY = "advisor_user"


@dataclass(frozen=True)
class SignedInUser:
    id: uuid.UUID
    email: str
    is_admin: bool


def signed_in_user() -> SignedInUser | None:
    user = st.session_state.get(SESSION_USER_KEY)
    return user if isinstance(user, SignedInUser) else None


def set_signed_in_user(user: SignedInUser | None) -> None:
    if user is None:
        st.session_state.pop(SESSION_USER_KEY, None)
    else:
        st.session_state[SESSION_USER_KEY] = user


@contextmanager
def guarded(name: str) -> Iterator[str]:
    """Run a block with a request id; an unexpected error shows only a reference to it."""
    request_id = new_request_id()
    with request_context(request_id, page=name):
        try:
            yield request_id
        except ScriptControlException:
            raise  # st.rerun / st.stop are control flow, not errors
        except Exception as exc:
            log_exception(exc, where=f"page:{name}")
            st.error(user_error_message(request_id), icon=":material/error:")


def _leave_legacy_multipage_mode() -> None:
    """Make sure a page script never runs on its own, outside the entry script's gate.

    Because a ``pages/`` folder sits beside the entry script, Streamlit starts in its legacy
    multipage mode and only leaves it once a session has called ``st.navigation``. On a freshly
    started server, the first visitor who opens a page URL directly (``/analytics``) would have that
    page script run without ``streamlit_app.py``: no boot, no guard, no gate (the check in ``page()``
    still shows nothing but "Please sign in."). Here we switch the process to ``st.navigation``
    mode, as the entry script's first run would, and rerun so the entry script (gate included)
    handles the request. ``PagesManager.uses_pages_directory`` is Streamlit's own (internal) switch.
    """
    from streamlit.runtime.pages_manager import PagesManager

    # Only a visitor without a session can be here in a real server: signing in means the entry
    # script ran, and its st.navigation call leaves legacy mode for the whole process for good.
    # (AppTest resets the switch on every run; its signed-in page tests are unaffected.)
    if PagesManager.uses_pages_directory and signed_in_user() is None:
        PagesManager.uses_pages_directory = False
        st.rerun()


@contextmanager
def page(name: str) -> Iterator[SignedInUser]:
    """The body of a data page: signed-in user required (the gate has already checked)."""
    _leave_legacy_multipage_mode()
    with guarded(name):
        user = signed_in_user()
        if user is None:  # defence in depth: a page run outside the gate shows nothing
            st.warning("Please sign in.")
            st.stop()
        yield user
