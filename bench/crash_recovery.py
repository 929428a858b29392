"""How long a turn cut short by a killed process stays open, with the default settings (C24).

    python -m bench.crash_recovery [--quick] [--repeat N]

Creates its own PostgreSQL database (dropped at the end) and the loopback provider stub (an answer
of 400 chunks, 0.1 s apart). Each round: a process (``python -m tests.process_turn``) starts a turn;
once part of the answer is checkpointed, it is killed with SIGKILL; a second process, sweeping as an
app server does (``ADVISOR_SWEEP_INTERVAL_S``), is started at once, and the time from the kill until
the run is ``interrupted`` / ``process_stopped`` is measured. Heartbeat and sweep interval are the
defaults (10 s, 20 s) unless ``ADVISOR_TURN_HEARTBEAT_S`` / ``ADVISOR_SWEEP_INTERVAL_S`` are set.
``--repeat`` rounds (3; ``--quick``: 1); the median and the worst are reported.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.common import create_database, drop_database, goal, machine

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="time from SIGKILL of a turn's process to its run closed")
    parser.add_argument("--quick", action="store_true", help="one round instead of three")
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args(argv)
    rounds = args.repeat or (1 if args.quick else 3)
    name, url = create_database("advisor_bench_crash")
    os.environ["ADVISOR_DATABASE_URL"] = url
    os.environ.setdefault("ADVISOR_GUARD", "off")
    from sqlalchemy import select

    from core import db as core_db
    from core.conversations import create_conversation
    from core.db import system_session
    from core.settings import get_settings, reset_settings_cache
    from models import AgentRun, User
    from models.schemas import ConversationIn
    from tests.stubs.provider_server import ProviderStubServer, Reply

    def status(run_id: uuid.UUID) -> tuple[str, str | None, str]:
        with system_session() as s:
            run = s.execute(select(AgentRun).where(AgentRun.id == run_id)).scalar_one()  # type: ignore[arg-type]
            return run.status, run.error_code, run.output

    times: list[float] = []
    try:
        reset_settings_cache()
        core_db.migrate(url)
        settings = get_settings()
        print(f"machine: {machine()}; heartbeat {settings.turn_heartbeat_s:g} s, sweep every "
              f"{settings.sweep_interval_s:g} s", flush=True)
        user = User(email=f"crash-{uuid.uuid4().hex[:8]}@example.com", auth_provider="local")
        with system_session() as s:
            s.add(user)
        with ProviderStubServer() as stub:
            stub.set_reply("openai", Reply(text=" ".join(f"w{i}" for i in range(400)), chunk_delay_s=0.1))
            env = {**os.environ, "ADVISOR_PROVIDERS": "openai", "ADVISOR_OPENAI_API_KEY": "sk-bench-crash-0000",
                   "ADVISOR_OPENAI_BASE_URL": stub.openai_base_url}
            for n in range(rounds):
                conversation = create_conversation(user_id=user.id, data=ConversationIn(agent="general")).id
                base = [sys.executable, "-m", "tests.process_turn", "--user", str(user.id),
                        "--conversation", str(conversation)]
                dying = subprocess.Popen([*base, "--text", f"round {n}"], cwd=ROOT, env=env,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                assert dying.stdout is not None
                run_id = uuid.UUID(dying.stdout.readline().split()[1])
                while not status(run_id)[2]:  # wait for the first checkpoint of partial output
                    time.sleep(0.1)
                dying.send_signal(signal.SIGKILL)
                killed = time.monotonic()
                dying.wait()
                sweeper = subprocess.Popen([*base, "--text", f"live {n}", "--sweep"], cwd=ROOT, env=env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                try:
                    while status(run_id)[0] == "pending":
                        time.sleep(0.1)
                    times.append(time.monotonic() - killed)
                finally:
                    sweeper.kill()
                    sweeper.wait()
                closed = status(run_id)
                assert closed[:2] == ("interrupted", "process_stopped") and closed[2], closed
                print(f"round {n + 1}: closed {times[-1]:.1f} s after SIGKILL", flush=True)
        core_db.dispose_engines()
        print(f"figure sigkill_to_closed_median: {statistics.median(times):.1f} s", flush=True)
        goal("sigkill_to_closed_worst", max(times), "s", "<=", 60)
    finally:
        core_db.dispose_engines()
        drop_database(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
