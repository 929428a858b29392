"""core.run_leases: heartbeats of live turns, the sweep of stale ones, the graceful stop (C24)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from core import run_leases
from core.db import system_session
from core.settings import ROOT
from models import AgentRun, Conversation
from models.types import utcnow
from tests.factories import make_user

_RUNS = AgentRun.__table__  # type: ignore[attr-defined]


@pytest.fixture
def conversation(any_db_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    user = make_user()
    with system_session() as s:
        conv = Conversation(user_id=user)
        s.add(conv)
    return user, conv.id


@pytest.fixture(autouse=True)
def _no_leases_left() -> Iterator[None]:
    yield
    for run_id in run_leases.live_runs():
        run_leases.Lease(run_id, uuid.uuid4()).release()


def add_runs(
    user: uuid.UUID, conversation: uuid.UUID, n: int, *, heartbeat_at: datetime | None,
    created_at: datetime | None = None, status: str = "pending", output: str = "partial",
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(n)]
    rows = [
        {"id": i, "user_id": user, "conversation_id": conversation, "agent": "general",
         "created_at": created_at or heartbeat_at or utcnow(), "user_message": f"message {k}", "output": output,
         "status": status, "request_id": "r", "heartbeat_at": heartbeat_at}
        for k, i in enumerate(ids)
    ]
    with system_session() as s:
        s.execute(insert(_RUNS), rows)
    return ids


def runs_by_id(ids: list[uuid.UUID]) -> dict[uuid.UUID, AgentRun]:
    with system_session() as s:
        return {r.id: r for r in s.execute(select(AgentRun).where(_RUNS.c.id.in_(ids))).scalars()}


def test_the_sweep_closes_only_pending_runs_whose_heartbeat_is_stale(conversation, set_env):
    set_env(TURN_HEARTBEAT_S="10")
    user, conv = conversation
    now = utcnow()
    stale = add_runs(user, conv, 3, heartbeat_at=now - timedelta(seconds=31))
    fresh = add_runs(user, conv, 2, heartbeat_at=now - timedelta(seconds=29))
    # written by an older version: no heartbeat, the run's age counts
    old_unbeaten = add_runs(user, conv, 1, heartbeat_at=None, created_at=now - timedelta(minutes=5))
    young_unbeaten = add_runs(user, conv, 1, heartbeat_at=None, created_at=now - timedelta(seconds=5))
    finished = add_runs(user, conv, 1, heartbeat_at=now - timedelta(hours=1), status="ok", output="done")

    closed = run_leases.sweep_stale_runs(now=now)

    assert sorted(closed) == sorted(stale + old_unbeaten)
    runs = runs_by_id(stale + fresh + old_unbeaten + young_unbeaten + finished)
    for run_id in stale + old_unbeaten:
        run = runs[run_id]
        assert (run.status, run.error_code, run.output) == ("interrupted", "process_stopped", "partial")
        assert run.user_message.startswith("message")
    assert {runs[i].status for i in fresh + young_unbeaten} == {"pending"}
    assert (runs[finished[0]].status, runs[finished[0]].error_code) == ("ok", None)
    assert run_leases.sweep_stale_runs(now=now) == []  # idempotent


def test_the_heartbeat_writes_every_live_lease_in_one_update_and_only_pending_runs(conversation):
    user, conv = conversation
    long_ago = utcnow() - timedelta(hours=1)
    live = add_runs(user, conv, 3, heartbeat_at=long_ago)
    released = add_runs(user, conv, 1, heartbeat_at=long_ago)
    ended = add_runs(user, conv, 1, heartbeat_at=long_ago, status="ok")
    for run_id in live + released + ended:
        run_leases.acquire(run_id, user)
    run_leases.Lease(released[0], user).release()

    assert run_leases.heartbeat() == 3  # one UPDATE; the finished run is not written

    runs = runs_by_id(live + released + ended)
    assert all((runs[i].heartbeat_at or long_ago) > long_ago for i in live)
    assert runs[released[0]].heartbeat_at == long_ago
    assert runs[ended[0]].heartbeat_at == long_ago
    assert run_leases.sweep_stale_runs() == released  # the live ones are fresh now


def test_is_stale_is_the_sweep_rule(set_env):
    set_env(TURN_HEARTBEAT_S="2")
    now = utcnow()
    assert run_leases.is_stale(now - timedelta(seconds=7), now - timedelta(hours=1), now=now)
    assert not run_leases.is_stale(now - timedelta(seconds=5), now - timedelta(hours=1), now=now)
    assert run_leases.is_stale(None, now - timedelta(seconds=7), now=now)
    assert not run_leases.is_stale(None, now - timedelta(seconds=1), now=now)


def test_a_graceful_stop_closes_live_turns_with_their_partial_output(conversation):
    user, conv = conversation
    [live, ended] = add_runs(user, conv, 2, heartbeat_at=utcnow(), output="checkpoint")
    lease = run_leases.acquire(live, user, partial=lambda: "checkpoint and more")
    run_leases.acquire(ended, user).release()

    assert run_leases.close_live_turns(grace_s=0.05) == 1

    assert lease.closed_by_shutdown  # the turn's own late finish records the same cause
    runs = runs_by_id([live, ended])
    assert (runs[live].status, runs[live].error_code, runs[live].output) == (
        "interrupted", "shutdown", "checkpoint and more")
    assert runs[ended].status == "pending"  # not this process's live turn any more: its finish writes it
    lease.release()


def test_a_turn_that_ends_within_the_grace_period_is_left_to_finish(conversation):
    user, conv = conversation
    [run_id] = add_runs(user, conv, 1, heartbeat_at=utcnow())
    lease = run_leases.acquire(run_id, user)
    started = time.monotonic()
    threading.Timer(0.2, lease.release).start()
    assert run_leases.close_live_turns(grace_s=5) == 0
    assert time.monotonic() - started < 4
    assert not lease.closed_by_shutdown
    assert runs_by_id([run_id])[run_id].status == "pending"  # its own finish writes it


_SWEEPER = """
import json, sys, time
from core import run_leases
start_at = float(sys.argv[1])
time.sleep(max(0.0, start_at - time.time()))
print(json.dumps([str(i) for i in run_leases.sweep_stale_runs()]))
"""


def test_four_processes_sweeping_at_once_close_each_run_exactly_once(pg_url, tmp_path: Path):
    """C24: 1,000 stale runs, 4 sweeping processes started together: every run closed by exactly one
    of them, and none of the live runs touched."""
    user = make_user()
    with system_session() as s:
        conv = Conversation(user_id=user)
        s.add(conv)
    now = utcnow()
    stale = add_runs(user, conv.id, 1000, heartbeat_at=now - timedelta(minutes=2))
    live = add_runs(user, conv.id, 50, heartbeat_at=now + timedelta(minutes=5))  # heartbeats keep coming
    env = {**os.environ, "ADVISOR_DATABASE_URL": pg_url, "ADVISOR_GUARD": "off", "ADVISOR_TURN_HEARTBEAT_S": "10"}
    start_at = time.time() + 3.0  # after the interpreters have started and imported the app
    procs = [
        subprocess.Popen([sys.executable, "-c", _SWEEPER, str(start_at)], cwd=ROOT, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    closed_by: list[list[str]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        closed_by.append(json.loads(out.strip().splitlines()[-1]))
    every = [run_id for ids in closed_by for run_id in ids]
    assert len(every) == len(set(every)) == 1000
    assert set(every) == {str(i) for i in stale}
    runs = runs_by_id(stale + live)
    assert {(runs[i].status, runs[i].error_code) for i in stale} == {("interrupted", "process_stopped")}
    assert {(runs[i].status, runs[i].error_code, runs[i].output) for i in live} == {("pending", None, "partial")}
