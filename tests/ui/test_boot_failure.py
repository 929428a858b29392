"""C8 at start: when the app cannot boot (database unreachable) the visitor sees a reference, no trace."""

from __future__ import annotations

import logging

from tests.ui.conftest import new_app_test


def test_unreachable_database_shows_a_reference_and_logs_it(set_env, caplog, monkeypatch):
    from tests.ui.conftest import ROOT

    monkeypatch.chdir(ROOT)
    set_env(DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:1/nowhere")  # loopback, nothing listens
    with caplog.at_level(logging.ERROR, logger="advisor"):
        at = new_app_test().run()
    assert not at.exception
    [error] = [e.value for e in at.error]
    assert error.startswith("Something went wrong — reference ")
    reference = error.rsplit(" ", 1)[1]
    assert "Traceback" not in error and "127.0.0.1" not in error
    assert any(reference in r.getMessage() or reference == getattr(r, "request_id", None)
               for r in caplog.records)
    assert not at.text_input  # no sign-in form, no page: the run stopped
