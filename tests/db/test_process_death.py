"""C24: a turn cut short by a dying process is closed by a live process within a minute.

Real OS processes on PostgreSQL, answers streaming slowly from the loopback stub: one process is
killed (SIGKILL) mid-answer, and another one, running the periodic sweep as the app server does,
closes the run. Short heartbeats (1 s; stale after 3 s) keep the test short; the rule is the same.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core.conversations import create_conversation
from core.db import system_session
from core.settings import ROOT
from models import AgentRun
from models.schemas import ConversationIn
from tests.chat_fixtures import OPENAI_KEY
from tests.factories import make_user
from tests.stubs.provider_server import Fault, ProviderStubServer, Reply

HEARTBEAT_S = 1.0
ANSWER = " ".join(f"word{i}" for i in range(120))  # 120 chunks, 0.1 s apart: a 12 s answer


class AppProcess:
    """``python -m tests.process_turn`` with its stdout lines read as they come."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.process_turn", *args], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def wait_for(self, prefix: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
                raise AssertionError(f"no {prefix!r} line within {timeout} s; stderr: {err[-2000:]}") from None
            if line.startswith(prefix):
                return line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def app_env(pg_url: str, stub_server: ProviderStubServer) -> Iterator[dict[str, str]]:
    stub_server.reset()
    stub_server.set_reply("openai", Reply(text=ANSWER, chunk_delay_s=0.1))
    yield {
        **os.environ,
        "ADVISOR_DATABASE_URL": pg_url,
        "ADVISOR_GUARD": "off",
        "ADVISOR_PROVIDERS": "openai",
        "ADVISOR_OPENAI_API_KEY": OPENAI_KEY,
        "ADVISOR_OPENAI_BASE_URL": stub_server.openai_base_url,
        "ADVISOR_TURN_HEARTBEAT_S": str(HEARTBEAT_S),
        "ADVISOR_SWEEP_INTERVAL_S": "1",
    }
    stub_server.reset()


def _run(run_id: uuid.UUID) -> AgentRun:
    with system_session() as s:
        run: AgentRun = s.execute(select(AgentRun).where(AgentRun.id == run_id)).scalar_one()  # type: ignore[arg-type]
        return run


def test_a_run_killed_mid_answer_is_closed_by_another_process_which_spares_its_own_live_turn(
    app_env, stub_server: ProviderStubServer
):
    user = make_user()
    conversation = create_conversation(user_id=user, data=ConversationIn(agent="general")).id
    args = ("--user", str(user), "--conversation", str(conversation))
    dying = AppProcess(app_env, *args, "--text", "the question asked before the crash")
    sweeper: AppProcess | None = None
    try:
        killed_run = uuid.UUID(dying.wait_for("run ").split()[1])
        # some output, checkpointed (every 2 s) with the run's heartbeat
        deadline = time.monotonic() + 30
        while not _run(killed_run).output and time.monotonic() < deadline:
            time.sleep(0.1)
        dying.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        dying.proc.wait(10)
        before = _run(killed_run)
        assert before.status == "pending" and before.output and before.heartbeat_at is not None

        # the sweeping process's own turn first waits for its provider, streaming nothing, for longer
        # than three heartbeats: only the heartbeat thread keeps its lease
        stub_server.queue_faults("openai", Fault("slow_first_byte", delay_s=3 * HEARTBEAT_S + 2))
        sweeper = AppProcess(app_env, *args, "--text", "a live question in the sweeping process", "--sweep")
        live_run = uuid.UUID(sweeper.wait_for("run ").split()[1])
        live_statuses: set[str] = set()
        while (run := _run(killed_run)).status == "pending":
            assert time.monotonic() - killed_at < 60, "the run was not closed within a minute"
            live_statuses.add(_run(live_run).status)
            time.sleep(0.2)
        closed_after = time.monotonic() - killed_at
        print(f"\nfigure sigkill_to_closed: {closed_after:.1f} s (heartbeat {HEARTBEAT_S} s, sweep every 1 s)")

        assert (run.status, run.error_code) == ("interrupted", "process_stopped")
        assert run.user_message == "the question asked before the crash"
        assert run.output == before.output and ANSWER.startswith(run.output.strip())
        assert run.provider == "openai"  # the checkpoint recorded who was answering
        assert closed_after < 60

        # the sweeping process's own turn outlives three heartbeats, swept all along, never closed
        while (status := _run(live_run).status) == "pending" and sweeper.proc.poll() is None:
            live_statuses.add(status)
            time.sleep(0.1)
        assert live_statuses == {"pending"} and status == "ok"  # never closed while it was live
        assert sweeper.wait_for("finished", timeout=60) == "finished ok None"
        live = _run(live_run)
        assert (live.status, live.error_code, live.output) == ("ok", None, ANSWER)
        assert live.latency_ms is not None and live.latency_ms > 3 * HEARTBEAT_S * 1000 * 2
    finally:
        dying.stop()
        if sweeper is not None:
            sweeper.stop()
