"""ui.frame: the page frame lets Streamlit's control flow through and turns errors into a reference.

``guarded()`` catches ``Exception`` only. ``st.rerun`` and ``st.stop`` (and ``st.switch_page``, a
rerun) work because Streamlit raises them as ``BaseException`` subclasses; the first test fails if
a Streamlit release ever makes them ordinary exceptions (the frame would then show a reference for
a rerun and carry on after a stop).
"""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from streamlit.testing.v1 import AppTest

from core.error_reports import ERRORS_LOGGER
from core.log_setup import setup_logging
from core.settings import get_settings

REFERENCE = re.compile(r"^Something went wrong — reference ([0-9a-f]{12})$")


def _rerun_and_stop_inside_the_frame() -> None:
    import streamlit as st

    from ui.frame import guarded

    st.session_state.setdefault("runs", 0)
    st.session_state["runs"] += 1
    with guarded("control-flow"):
        if st.session_state["runs"] == 1:
            st.rerun()
        st.write("after the rerun")
        st.stop()
    st.write("after the stop")


def _error_inside_the_frame() -> None:
    import streamlit as st

    from ui.frame import guarded

    with guarded("failing"):
        raise RuntimeError("secret detail 7f3a")
    st.write("the script goes on after the frame")


def _uncaught_error_report() -> None:
    import streamlit as st

    from ui.frame import report_uncaught_error

    st.session_state["suppressed"] = report_uncaught_error(ValueError("callback detail 91c2"))


@pytest.fixture
def app_log() -> Iterator[io.StringIO]:
    """The app's own log output (``setup_logging`` with a text stream); back to stderr afterwards."""
    stream = io.StringIO()
    setup_logging(get_settings(), stream=stream)
    yield stream
    setup_logging(get_settings(), stream=sys.stderr)


def test_rerun_and_stop_pass_through_the_frame() -> None:
    at = AppTest.from_function(_rerun_and_stop_inside_the_frame).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["runs"] == 2  # st.rerun ran the script again
    assert [m.value for m in at.markdown] == ["after the rerun"]  # st.stop ended the run


def test_an_error_in_the_frame_shows_only_a_reference_and_is_logged(
    caplog: pytest.LogCaptureFixture, app_log: io.StringIO
) -> None:
    caplog.set_level(logging.ERROR, logger="advisor")
    at = AppTest.from_function(_error_inside_the_frame).run()
    assert not at.exception
    [shown] = [e.value for e in at.error]
    match = REFERENCE.match(shown)
    assert match, shown
    assert [m.value for m in at.markdown] == ["the script goes on after the frame"]
    [record] = [r for r in caplog.records if r.name == ERRORS_LOGGER]
    assert record.request_id == match.group(1)  # type: ignore[attr-defined]
    assert record.getMessage() == "unhandled RuntimeError in page:failing"
    assert record.exc_info is not None and "secret detail 7f3a" in str(record.exc_info[1])
    assert f"[{match.group(1)}] unhandled RuntimeError in page:failing" in app_log.getvalue()


def test_uncaught_error_handler_shows_a_reference_and_suppresses_streamlits_display(
    caplog: pytest.LogCaptureFixture, app_log: io.StringIO
) -> None:
    caplog.set_level(logging.ERROR, logger="advisor")
    at = AppTest.from_function(_uncaught_error_report).run()
    assert at.session_state["suppressed"] is True  # Streamlit shows nothing of the exception
    assert not at.exception
    [shown] = [e.value for e in at.error]
    match = REFERENCE.match(shown)
    assert match and "91c2" not in shown, shown
    [record] = [r for r in caplog.records if r.name == ERRORS_LOGGER]
    assert record.request_id == match.group(1)  # type: ignore[attr-defined]
    assert record.getMessage() == "unhandled ValueError in script"
    assert f"[{match.group(1)}] unhandled ValueError in script" in app_log.getvalue()
    assert "callback detail 91c2" in app_log.getvalue()  # the details go to the log
