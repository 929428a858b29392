"""C24 in a real browser against ``streamlit run``: a turn cut short by the app process stopping.

Each test starts its own server (it is stopped or killed in the test) on a fresh PostgreSQL database,
with short heartbeats (1 s; stale after 3 s), a sweep every second and a one-second grace period.
The answer streams slowly from the provider stub (a chunk every 0.25 s).

* SIGTERM (a deploy) during the answer: before the process exits, the run is ``interrupted`` /
  ``shutdown`` with the partial output the page showed.
* SIGKILL (a crash) during the answer, then a restart: the turn shows its partial answer, the
  interrupted notice and Retry; Retry answers.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect

from tests.conftest import _pg_url, create_pg_database, drop_pg_database
from tests.e2e.conftest import ProviderStub, free_port, launch_app, stop_process, wait_http_ok
from tests.e2e.helpers import BrowserSession

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-42!"
SLOW_ANSWER = " ".join(f"step{i}" for i in range(240))  # 240 chunks, 0.25 s apart: a minute
RETRIED_ANSWER = "Retried: here is the whole answer this time."
INTERRUPTED = "Interrupted: the server stopped while answering"


@dataclass
class App:
    env: dict[str, str]
    base: Path
    port: int
    database: str
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""
    log: Path | None = None

    def start(self, name: str) -> None:
        base = self.base / name
        base.mkdir()
        self.proc, self.url, self.log = launch_app(self.env, base, port=self.port)
        wait_http_ok(f"{self.url}/_stcore/health", self.proc, self.log, "streamlit run streamlit_app.py")

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""

    def run(self, message: str) -> tuple[Any, ...]:
        """(status, error_code, output, provider) of the first run of ``message`` (a retry may add a
        newer version), read as the database owner."""
        dsn = _pg_url(self.database).replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT status, error_code, output, provider FROM agent_runs WHERE user_message = %s "
                "ORDER BY created_at LIMIT 1", (message,)
            ).fetchone()
        assert row is not None, f"no run for {message!r}"
        return tuple(row)


@pytest.fixture
def app(pg_template: str, provider_stub: ProviderStub, tmp_path: Path) -> Iterator[App]:
    provider_stub.reset()
    database = create_pg_database(template=pg_template)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = {
        "ADVISOR_DATABASE_URL": _pg_url(database),
        "ADVISOR_PROVIDERS": "openai",
        "ADVISOR_OPENAI_BASE_URL": provider_stub.openai_base_url,
        "ADVISOR_OPENAI_API_KEY": "sk-e2e-fake-openai-key",
        "ADVISOR_DATA_DIR": str(data_dir),
        "ADVISOR_GUARD": "enforce",
        "ADVISOR_LOG_LEVEL": "INFO",
        "ADVISOR_TURN_HEARTBEAT_S": "1",
        "ADVISOR_SWEEP_INTERVAL_S": "1",
        "ADVISOR_SHUTDOWN_GRACE_S": "1",
    }
    app = App(env=env, base=tmp_path, port=free_port(), database=database)
    try:
        yield app
    finally:
        if app.proc is not None:
            stop_process(app.proc)
        provider_stub.reset()
        drop_pg_database(database)


@pytest.fixture
def browser_session(browser: Any, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield lambda url: BrowserSession(context.new_page(), url, tmp_path / "screenshots")
    finally:
        context.close()


def sign_up(s: BrowserSession, email: str) -> None:
    s.sign_up(email, PASSWORD)
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()


def sign_in(s: BrowserSession, email: str) -> None:
    """Open the app; sign in when the browser's session did not carry over (it is kept in the
    database, so a restarted server still knows it)."""
    s.goto("/")
    if s.on_sign_in_pages():
        s.sign_in(email, PASSWORD)
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()


def start_slow_answer(s: BrowserSession, stub: ProviderStub, message: str) -> None:
    """Send ``message`` and wait until part of the slow answer is on the page (and checkpointed)."""
    stub.reply("*", {"text": SLOW_ANSWER, "chunk_delay_s": 0.25})
    box = s.page.locator("[data-testid=stChatInputTextArea]")
    box.fill(message)
    box.press("Enter")  # not s.act: the run lasts as long as the answer
    expect(s.main.locator("[data-testid=stChatMessage]").filter(has_text="step12")).to_have_count(1)
    time.sleep(2.5)  # a checkpoint of the partial output (every 2 s) has been written


def test_sigterm_closes_the_live_turn_as_shutdown_with_its_partial_output(app, provider_stub, browser_session):
    app.start("server")
    s = browser_session(app.url)
    sign_up(s, f"e2e-term-{uuid.uuid4().hex[:8]}@example.com")
    message = "What should the deploy checklist say?"
    start_slow_answer(s, provider_stub, message)
    assert app.proc is not None
    app.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    app.proc.wait(timeout=30)
    stopped_in = time.monotonic() - started
    status, error_code, output, provider = app.run(message)  # as the process left it
    assert (status, error_code, provider) == ("interrupted", "shutdown", "openai"), app.output()[-3000:]
    assert "step12" in output and SLOW_ANSWER.startswith(output.strip()) and output.strip() != SLOW_ANSWER
    assert "closed 1 live turn(s) as interrupted (shutdown)" in app.output()
    assert stopped_in < 20, stopped_in


def test_after_a_crash_and_a_restart_the_turn_shows_its_partial_answer_and_retry_answers(
    app, provider_stub, browser_session
):
    app.start("first")
    s = browser_session(app.url)
    email = f"e2e-kill-{uuid.uuid4().hex[:8]}@example.com"
    sign_up(s, email)
    message = "How do we survive a crash?"
    start_slow_answer(s, provider_stub, message)
    assert app.proc is not None
    app.proc.send_signal(signal.SIGKILL)
    app.proc.wait(timeout=10)
    assert app.run(message)[:2] == ("pending", None)  # nobody has closed it yet

    provider_stub.reply("*", {"text": RETRIED_ANSWER})
    app.start("restarted")
    sign_in(s, email)
    turn = s.main.locator("[data-testid=stChatMessage]").filter(has_text="step12")
    expect(turn).to_have_count(1)
    expect(turn).to_contain_text(INTERRUPTED)
    expect(turn).not_to_contain_text("Answer in progress")
    expect(turn).not_to_contain_text("no provider answered")
    expect(turn.locator("[data-testid=stCaptionContainer]").last).to_contain_text("openai")
    retry = turn.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    s.shot("interrupted-turn")

    s.act(retry.click)
    expect(s.main.locator("[data-testid=stChatMessage]").filter(has_text=RETRIED_ANSWER)).to_have_count(1)
    s.shot("retried")
    deadline = time.monotonic() + 20
    while app.run(message)[:2] == ("pending", None) and time.monotonic() < deadline:
        time.sleep(0.2)  # the restarted server's sweep closes it (or already has)
    assert app.run(message)[:2] == ("interrupted", "process_stopped")
