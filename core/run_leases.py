"""Leases on live chat turns: no run stays ``pending`` once the process answering it has stopped.

A process holds a **lease** on each run it is answering, from the start of the stream to its end
(``acquire`` / ``Lease.release``). The lease is the run's ``heartbeat_at``:

- one heartbeat thread per process (not per turn or session) writes ``heartbeat_at`` of every run
  it holds a lease on at least every ``ADVISOR_TURN_HEARTBEAT_S`` seconds: one small UPDATE as the
  system role, however many runs are live, also while a turn waits for its provider;
- each checkpoint of partial output writes ``heartbeat_at`` too (``core.chat``);
- a run is inserted with ``heartbeat_at`` set, and a run without one (written by an older version)
  counts from its ``created_at``.

``sweep_stale_runs`` closes every pending run whose heartbeat is older than ``STALE_HEARTBEATS``
heartbeats: ``interrupted`` with ``error_code`` ``process_stopped``, its partial output (the last
checkpoint) kept. It is one conditional UPDATE, never a read-then-write, so any number of replicas
may sweep at once and each run is closed exactly once (PostgreSQL re-checks the condition of a row
another sweep has just closed, and skips it). A live turn is never swept: it heartbeats. Every app
process sweeps at start (``core.startup``) and periodically (``core.server_tasks``).

On a graceful stop (SIGTERM), ``close_live_turns`` gives the process's own live turns a grace period
to finish normally, then closes those still live as ``interrupted`` / ``shutdown`` with the output
they have streamed so far; their own late finish keeps that cause (``Lease.closed_by_shutdown``).

Timestamps are the app's clock (UTC), as ``created_at`` is: replicas are assumed to keep time (NTP),
which is far tighter than three heartbeats.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Table, Uuid, bindparam, update
from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError

from core.db import system_session
from core.settings import get_settings
from models import AgentRun
from models.types import UTCDateTime, utcnow

log = logging.getLogger("advisor.leases")

_RUNS: Table = AgentRun.__table__  # type: ignore[attr-defined]
STALE_HEARTBEATS = 3
PROCESS_STOPPED = "process_stopped"
SHUTDOWN = "shutdown"

# 'pending' is a literal (not a parameter) so that PostgreSQL can use the partial index on pending
# runs' heartbeats (migration 0012) for every execution, prepared or not.
_SWEEP = (
    sql_text(
        f"""
        UPDATE agent_runs SET status = 'interrupted', error_code = '{PROCESS_STOPPED}'
        WHERE status = 'pending'
          AND (heartbeat_at < :cutoff OR (heartbeat_at IS NULL AND created_at < :cutoff))
        RETURNING id
        """
    )
    .bindparams(bindparam("cutoff", type_=UTCDateTime()))
    .columns(id=Uuid())
)


@dataclass
class Lease:
    """This process is answering ``run_id``; ``partial()`` is the answer streamed so far."""

    run_id: uuid.UUID
    user_id: uuid.UUID
    partial: Callable[[], str] = field(default=lambda: "", repr=False)
    # set when a graceful stop closed the run (interrupted / shutdown) before the turn ended
    closed_by_shutdown: bool = False

    def release(self) -> None:
        """The turn has ended (whatever its outcome): stop heartbeating its run."""
        with _changed:
            _live.pop(self.run_id, None)
            _changed.notify_all()


_changed = threading.Condition()  # guards _live and _heartbeat; notified when a lease is released
_live: dict[uuid.UUID, Lease] = {}
_heartbeat: threading.Thread | None = None


def acquire(run_id: uuid.UUID, user_id: uuid.UUID, partial: Callable[[], str] | None = None) -> Lease:
    """Hold a lease on ``run_id`` until ``Lease.release()``; starts the process's heartbeat thread."""
    global _heartbeat
    lease = Lease(run_id, user_id, partial or (lambda: ""))
    with _changed:
        _live[run_id] = lease
        if _heartbeat is None or not _heartbeat.is_alive():
            _heartbeat = threading.Thread(target=_beat_forever, name="advisor-heartbeat", daemon=True)
            _heartbeat.start()
    return lease


def live_runs() -> list[uuid.UUID]:
    """The runs this process holds a lease on."""
    with _changed:
        return list(_live)


def heartbeat_interval_s() -> float:
    return get_settings().turn_heartbeat_s


def stale_after() -> timedelta:
    """How old a pending run's heartbeat may get before the run counts as left by a stopped process."""
    return timedelta(seconds=STALE_HEARTBEATS * heartbeat_interval_s())


def is_stale(heartbeat_at: datetime | None, created_at: datetime, *, now: datetime | None = None) -> bool:
    """Whether a pending run with this heartbeat (or none: its creation) was left by a stopped
    process: the rule of ``sweep_stale_runs``, for a page that shows a run before the sweep has."""
    return (heartbeat_at or created_at) < (now or utcnow()) - stale_after()


def server_stopped(run: AgentRun, *, now: datetime | None = None) -> bool:
    """Whether ``run``'s answer was cut off because the process answering it stopped: closed as such
    (``process_stopped``, ``shutdown``), or still pending with a stale heartbeat (not swept yet)."""
    if run.status == "pending":
        return is_stale(run.heartbeat_at, run.created_at, now=now)
    return run.status == "interrupted" and run.error_code in (PROCESS_STOPPED, SHUTDOWN)


def heartbeat(run_ids: Sequence[uuid.UUID] | None = None) -> int:
    """Write ``heartbeat_at`` of the pending runs among ``run_ids`` (default: every live lease) in one
    UPDATE; returns how many rows it wrote."""
    ids = live_runs() if run_ids is None else list(run_ids)
    if not ids:
        return 0
    with system_session() as session:
        result = session.execute(
            update(_RUNS).where(_RUNS.c.id.in_(ids), _RUNS.c.status == "pending").values(heartbeat_at=utcnow())
        )
        return int(getattr(result, "rowcount", 0) or 0)


def _beat_forever() -> None:
    while True:
        time.sleep(heartbeat_interval_s())
        try:
            heartbeat()
        except Exception as exc:  # the database may be down for a while: the next beat tries again
            if isinstance(exc, DBAPIError):
                log.warning("could not write the heartbeat of live turns (%s)", type(exc).__name__)
            else:
                log.exception("heartbeat of live turns failed")


def sweep_stale_runs(*, now: datetime | None = None) -> list[uuid.UUID]:
    """Close every pending run whose heartbeat is stale (``interrupted`` / ``process_stopped``,
    partial output kept); returns the ids this call closed. Idempotent; safe with many replicas."""
    cutoff = (now or utcnow()) - stale_after()
    with system_session() as session:
        closed = list(session.execute(_SWEEP, {"cutoff": cutoff}).scalars())
    if closed:
        log.warning("closed %d run(s) left pending by a stopped process (interrupted: %s)", len(closed),
                    PROCESS_STOPPED)
    return closed


def wait_released(timeout: float) -> bool:
    """Wait until this process holds no lease (its live turns have ended); False on timeout."""
    deadline = time.monotonic() + timeout
    with _changed:
        while _live:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _changed.wait(left)
    return True


def close_live_turns(*, grace_s: float | None = None) -> int:
    """A graceful stop: give the live turns ``grace_s`` (default ``ADVISOR_SHUTDOWN_GRACE_S``) to end
    normally, then close the runs of those still live as ``interrupted`` / ``shutdown`` with the
    output streamed so far. Returns how many runs it closed."""
    grace = get_settings().shutdown_grace_s if grace_s is None else grace_s
    if wait_released(grace):
        return 0
    with _changed:
        leases = list(_live.values())
        for lease in leases:
            lease.closed_by_shutdown = True
    closed = 0
    with system_session() as session:
        for lease in leases:
            result = session.execute(
                update(_RUNS)
                .where(_RUNS.c.id == lease.run_id, _RUNS.c.status == "pending")
                .values(status="interrupted", error_code=SHUTDOWN, output=lease.partial())
            )
            closed += int(getattr(result, "rowcount", 0) or 0)
    log.warning("shutting down: closed %d live turn(s) as interrupted (%s), partial output kept", closed, SHUTDOWN)
    return closed
