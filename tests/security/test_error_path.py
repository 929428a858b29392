"""C8: an unexpected error on any page shows "Something went wrong — reference <id>", never a stack
trace, and the log holds that id together with the exception and its traceback.

Each page runs through the entry script (AppTest, a signed-in user); then one of *our* core
functions that the page calls is replaced by one that raises, and the page is run again.
"""

from __future__ import annotations

import io
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import streamlit as st
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest

from core.error_reports import ERRORS_LOGGER
from core.log_setup import setup_logging
from core.settings import get_settings
from tests.conftest import drop_pg_database
from tests.ui.conftest import ROOT
from tests.ui.conftest import app as app  # the AppTest factory fixture

pytestmark = pytest.mark.usefixtures("clean_observability")

REFERENCE = re.compile(r"^Something went wrong — reference ([0-9a-f]{12})$")


class Boom(RuntimeError):
    """The forced failure."""


@dataclass(frozen=True)
class Case:
    page: str  # the file under pages/
    name: str  # the name the page gives ui.frame.page(...)
    target: str  # "module:function" the page calls on its first render
    admin: bool = False
    click: str | None = None  # a button to click to reach the call
    typed: tuple[str, str] | None = None  # (text box label, text) to type to reach the call


CASES = [
    Case("pages/chat.py", "chat", "core.conversations:list_conversations"),
    Case("pages/vibe.py", "vibe", "core.profiles:get_profile"),
    Case("pages/prompt_preview.py", "prompt_preview", "core.profiles:get_profile"),
    Case("pages/analytics.py", "analytics", "core.analytics:filter_options"),
    Case("pages/privacy.py", "privacy", "core.export_files:write_export_file", click="Prepare my export"),
    Case("pages/status.py", "status", "core.status:collect_status"),
    Case("pages/admin.py", "admin", "core.admin:list_users", admin=True),
    Case("pages/account.py", "account", "core.credentials:sign_out_everywhere", click="Sign out everywhere"),
    Case(
        "pages/search.py", "search", "ui.search_view:search_conversations", typed=("Search your conversations", "plans")
    ),
]


@pytest.fixture
def log_text() -> Iterator[io.StringIO]:
    """The app's own log output (setup_logging with a text stream), for the run under test."""
    stream = io.StringIO()
    yield stream


def rendered(at: AppTest) -> bytes:
    """Every element and block of the last run, serialized as it is sent to the browser."""
    return b"".join(node.proto.SerializeToString() for node in at._tree if getattr(node, "proto", None) is not None)


def raiser(message: str) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise Boom(message)

    return fail


def reference_shown(at: AppTest) -> str:
    """The single error shown: exactly the reference message; returns its id."""
    assert not at.exception, at.exception  # Streamlit's own exception element = a stack trace shown
    texts = [e.value for e in at.error]
    assert len(texts) == 1, texts
    match = REFERENCE.match(texts[0])
    assert match, texts[0]
    return match.group(1)


def assert_logged(caplog: pytest.LogCaptureFixture, log_text: io.StringIO, rid: str, where: str, message: str) -> None:
    records = [r for r in caplog.records if r.name == ERRORS_LOGGER]
    assert len(records) == 1, [r.getMessage() for r in records]
    (record,) = records
    assert record.request_id == rid  # type: ignore[attr-defined]
    assert record.exc_info is not None and isinstance(record.exc_info[1], Boom)
    assert record.getMessage() == f"unhandled Boom in {where}"
    text = log_text.getvalue()
    line = next(line for line in text.splitlines() if "unhandled Boom" in line)
    assert f"ERROR advisor.errors [{rid}] unhandled Boom in {where}" in line
    assert "Traceback (most recent call last)" in text and f"Boom: {message}" in text


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_page_error_shows_reference_and_logs_it(
    case: Case, app, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, log_text: io.StringIO
) -> None:
    at = app(case.page, admin=case.admin)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]  # the page works before the fault

    setup_logging(get_settings(), stream=log_text)  # after boot(): our stream wins
    message = f"forced failure {secrets.token_hex(8)}"
    module, func = case.target.split(":")
    monkeypatch.setattr(f"{module}.{func}", raiser(message))
    caplog.set_level(logging.INFO, logger="advisor")
    caplog.clear()
    st.cache_data.clear()  # the first render cached the page's queries (analytics)
    if case.click is not None:
        (button,) = [b for b in at.button if b.label == case.click]
        button.click().run()
    elif case.typed is not None:
        label, text = case.typed
        (box,) = [t for t in at.text_input if t.label == label]
        box.input(text).run()
    else:
        at.run()

    rid = reference_shown(at)
    out = rendered(at)
    assert message.encode() not in out and b"Traceback" not in out and b"Boom" not in out
    assert_logged(caplog, log_text, rid, f"page:{case.name}", message)


def test_every_page_has_an_error_path_case() -> None:
    pages = {f"pages/{p.name}" for p in (ROOT / "pages").glob("*.py")}
    assert pages == {c.page for c in CASES}


def test_dropped_database_shows_reference_not_a_trace(
    pg_url: str, app, caplog: pytest.LogCaptureFixture, log_text: io.StringIO
) -> None:
    """Every query fails (the database is gone): the gate's own lookup errs, the user sees a reference."""
    at = app("pages/vibe.py")
    assert not at.exception and not at.error
    setup_logging(get_settings(), stream=log_text)
    caplog.set_level(logging.INFO, logger="advisor")
    caplog.clear()
    drop_pg_database(str(make_url(pg_url).database))
    at.run()

    assert not at.exception, at.exception
    texts = [e.value for e in at.error]
    assert texts, "no error shown"
    rids = [m.group(1) for m in (REFERENCE.match(t) for t in texts) if m]
    assert len(rids) == len(texts), texts  # every error shown is a bare reference
    out = rendered(at)
    assert b"Traceback" not in out and b"OperationalError" not in out and b"psycopg" not in out
    logged = {getattr(r, "request_id", None) for r in caplog.records if r.name == ERRORS_LOGGER}
    assert set(rids) <= logged
    for rid in rids:
        assert f"[{rid}] unhandled" in log_text.getvalue()
