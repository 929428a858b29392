"""ui.chat_view.run_notice: what the chat says under an answer that is not complete (C24)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from core.settings import reset_settings_cache
from models import AgentRun
from models.types import utcnow
from ui.chat_view import SERVER_STOPPED, meta_line, run_notice


def run(**values: Any) -> AgentRun:
    base: dict[str, Any] = {"user_id": uuid.uuid4(), "conversation_id": uuid.uuid4(), "user_message": "q",
                               "output": "part of an answer", "request_id": "ref123", "created_at": utcnow()}
    return AgentRun(**(base | values))


@pytest.fixture(autouse=True)
def _heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVISOR_TURN_HEARTBEAT_S", "10")  # stale after 30 s
    reset_settings_cache()


def test_a_pending_run_with_a_live_heartbeat_is_in_progress():
    notice = run_notice(run(status="pending", heartbeat_at=utcnow() - timedelta(seconds=25)))
    assert notice is not None and (notice.kind, notice.text) == ("progress", "Answer in progress…")


def test_a_pending_run_whose_heartbeat_went_stale_reads_as_interrupted_before_the_sweep():
    for stale in (run(status="pending", heartbeat_at=utcnow() - timedelta(seconds=31)),
                  run(status="pending", heartbeat_at=None, created_at=utcnow() - timedelta(minutes=5))):
        notice = run_notice(stale)
        assert notice is not None and notice.kind == "interrupted"
        assert notice.text.startswith(SERVER_STOPPED) and "ref123" in notice.text


@pytest.mark.parametrize("code", ["process_stopped", "shutdown"])
def test_a_run_closed_because_its_process_stopped_reads_as_interrupted(code: str):
    notice = run_notice(run(status="interrupted", error_code=code))
    assert notice is not None and notice.kind == "interrupted" and notice.text.startswith(SERVER_STOPPED)


def test_other_incomplete_runs_keep_their_own_notice_and_a_complete_one_has_none():
    cut = run_notice(run(status="interrupted", error_code="timeout"))
    assert cut is not None and cut.kind == "failed" and "(timeout)" in cut.text
    failed = run_notice(run(status="error", error_code="server", output=""))
    assert failed is not None and failed.kind == "failed"
    assert run_notice(run(status="ok")) is None


def test_no_provider_answered_only_when_none_did():
    assert meta_line(run(status="error", output="")) == "no provider answered"
    assert meta_line(run(status="interrupted", error_code="process_stopped")) == "provider not recorded"
    line = meta_line(run(status="interrupted", error_code="process_stopped", provider="openai", model="gpt-4o-mini"))
    assert line.startswith("openai · gpt-4o-mini")
