"""What an app server process does while it runs and when it stops, beside serving pages.

``server_tasks(settings)`` is entered by ``streamlit_app.py``'s lifespan hook (Streamlit's
``st.App`` lifespan, once per process, not per session) after the boot:

- **while the server runs**: one ``anyio`` task sweeps every ``ADVISOR_SWEEP_INTERVAL_S`` seconds
  (``core.run_leases.sweep_stale_runs``, in a worker thread so the event loop never waits for the
  database): a run whose process died -- this replica's predecessor or any other replica -- is closed
  within three heartbeats plus one interval. A failed sweep (the database is down) is logged and the
  next one tries again.
- **when the server stops** (SIGTERM or SIGINT: uvicorn's graceful shutdown runs the lifespan's exit
  before the process ends): the sweep stops, live turns get ``ADVISOR_SHUTDOWN_GRACE_S`` to finish
  normally, those still live are closed ``interrupted`` / ``shutdown`` with their partial output
  (``core.run_leases.close_live_turns``), all before the process exits. (A turn that ended has
  its row finished already: the write is made in its stream's own ``finally``.)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from sqlalchemy.exc import DBAPIError

from core.error_reports import log_exception
from core.run_leases import close_live_turns, sweep_stale_runs
from core.settings import Settings

log = logging.getLogger("advisor.server")


def sweep_once() -> int:
    """One sweep; a failure is logged (the next sweep tries again). Returns how many runs it closed."""
    try:
        return len(sweep_stale_runs())
    except Exception as exc:
        if isinstance(exc, DBAPIError):
            log.warning("the sweep of stale runs could not reach the database (%s)", type(exc).__name__)
        else:
            log_exception(exc, where="sweep")
        return 0


async def sweep_periodically(interval_s: float) -> None:
    """Sweep every ``interval_s`` seconds until cancelled."""
    while True:
        await anyio.sleep(interval_s)
        await anyio.to_thread.run_sync(sweep_once)


def stop_process(settings: Settings) -> None:
    """Close this process's live turns (after the grace period)."""
    try:
        close_live_turns(grace_s=settings.shutdown_grace_s)
    except Exception as exc:  # the database is down: the other replicas' sweeps will close them
        log_exception(exc, where="shutdown")


@asynccontextmanager
async def server_tasks(settings: Settings) -> AsyncIterator[None]:
    """Run the periodic sweep while the body runs; on exit, ``stop_process``."""
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(sweep_periodically, settings.sweep_interval_s)
            try:
                yield
            finally:
                group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(stop_process, settings)
