"""The periodic sweep of runs left by a stopped process (``core.run_leases.sweep_stale_runs``), with
and without the partial index on pending runs' heartbeats (migration 0012), in the same run.

    python -m bench.sweep [--quick] [--runs N] [--repeat N]

Creates its own database (dropped at the end), seeds N finished runs (1,000,000; ``--quick``:
100,000) through ``bench.seed_runs``, then adds 100 pending runs with a live heartbeat and 100 with a
stale one. Measured, with the index and then after dropping it (``ANALYZE`` both times):

- ``sweep_idle``: a sweep that finds nothing to close (what every replica does every 20 s);
- ``sweep_close``: a sweep that closes the 100 stale runs (they are set pending again between
  repeats, outside the timing).

Each figure is the median of ``--repeat`` sweeps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from datetime import timedelta

from bench.common import create_database, drop_database, goal, machine

STALE = LIVE = 100


def _median_ms(fn: object, repeat: int, before: object = None) -> float:
    times = []
    for _ in range(repeat):
        if callable(before):
            before()
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the sweep of stale runs, with and without its index")
    parser.add_argument("--quick", action="store_true", help="100,000 runs instead of 1,000,000")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    runs = args.runs or (100_000 if args.quick else 1_000_000)
    name, url = create_database("advisor_bench_sweep")
    os.environ["ADVISOR_DATABASE_URL"] = url
    os.environ.setdefault("ADVISOR_GUARD", "off")
    try:
        from sqlalchemy import insert, text

        from bench.seed_runs import seed_runs
        from core import db as core_db
        from core import run_leases
        from core.settings import reset_settings_cache
        from models import AgentRun, Conversation
        from models.types import utcnow

        reset_settings_cache()
        print(f"machine: {machine()}; {runs:,} finished runs", flush=True)
        result = seed_runs(database_url=url, users=20, runs=runs, seed=3, migrate=True, progress=False,
                           content=False)
        engine = core_db.engine_for(url)
        user, conversation = result.user_ids[0], uuid.uuid4()
        now = utcnow()
        with engine.begin() as conn:
            conn.execute(insert(Conversation.__table__), {"id": conversation, "user_id": user})  # type: ignore[attr-defined]

        def pending(n: int, heartbeat: timedelta) -> list[uuid.UUID]:
            ids = [uuid.uuid4() for _ in range(n)]
            rows = [{"id": i, "user_id": user, "conversation_id": conversation, "created_at": now,
                     "user_message": "m", "output": "partial", "status": "pending", "request_id": "r",
                     "heartbeat_at": now + heartbeat} for i in ids]
            with engine.begin() as conn:
                conn.execute(insert(AgentRun.__table__), rows)  # type: ignore[attr-defined]
            return ids

        pending(LIVE, timedelta(hours=1))  # live: their heartbeat keeps ahead of every sweep here
        stale = pending(STALE, -timedelta(hours=1))

        def reopen() -> None:
            with engine.begin() as conn:
                conn.execute(text("UPDATE agent_runs SET status = 'pending', error_code = NULL WHERE id = ANY(:ids)"),
                             {"ids": stale})

        def close_stale() -> None:
            closed = run_leases.sweep_stale_runs()
            assert len(closed) == STALE, len(closed)

        figures: dict[str, float] = {}
        for label in ("with_index", "without_index"):
            if label == "without_index":
                with engine.begin() as conn:
                    conn.execute(text("DROP INDEX ix_agent_runs_pending_heartbeat"))
            with engine.begin() as conn:
                conn.execute(text("ANALYZE agent_runs"))
            run_leases.sweep_stale_runs()  # warm: connections, plans, pages
            reopen()
            figures[f"close_{label}"] = _median_ms(close_stale, args.repeat, before=reopen)
            figures[f"idle_{label}"] = _median_ms(run_leases.sweep_stale_runs, args.repeat)
            print(f"figure sweep_idle_{label}: {figures[f'idle_{label}']:.2f} ms", flush=True)
            print(f"figure sweep_close_{label}: {figures[f'close_{label}']:.2f} ms", flush=True)
        core_db.dispose_engines()
        print(f"ratio sweep_idle: {figures['idle_without_index'] / figures['idle_with_index']:.1f}x "
              "(without the index / with it)", flush=True)
        goal("sweep_idle", figures["idle_with_index"], "ms", "<=", 10)
        goal("sweep_close", figures["close_with_index"], "ms", "<=", 50)
    finally:
        drop_database(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
