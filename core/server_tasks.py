"""What an app server process does while it runs and when it stops, beside serving pages.

``server_tasks(settings)`` is entered by ``streamlit_app.py``'s lifespan hook (Streamlit's
``st.App`` lifespan, once per process, not per session) after the boot:

- **while the server runs**: one ``anyio`` task sweeps every ``ADVISOR_SWEEP_INTERVAL_S`` seconds
  (``core.run_leases.sweep_stale_runs``, in a worker thread so the event loop never waits for the
  database): a run whose process died -- this replica's predecessor or any other replica -- is closed
  within three heartbeats plus one interval. A failed sweep (the database is down) is logged and the
  next one tries again.
- **when the server is told to stop** (SIGTERM, or SIGINT): first, while every connection is still
  open (closing one stops the script streaming its answer), live turns get
  ``ADVISOR_SHUTDOWN_GRACE_S`` to finish normally and those still live are closed ``interrupted`` /
  ``shutdown`` with their partial output (``core.run_leases.close_live_turns``; a turn that ended has
  its row finished already: the write is made in its stream's own ``finally``); then the signal goes
  on to the server's own handler (uvicorn's graceful shutdown under ``streamlit run``), chained, never
  replaced. All of it happens before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import FrameType
from typing import Any

import anyio
from sqlalchemy.exc import DBAPIError

from core.error_reports import log_exception
from core.run_leases import close_live_turns, sweep_stale_runs
from core.settings import Settings

log = logging.getLogger("advisor.server")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

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


StopHandler = Callable[[int, FrameType | None], Any] | int | None


def _pass_on(signum: int, frame: FrameType | None, previous: StopHandler) -> None:
    """Hand the stop signal to the handler that was there before ours (uvicorn's graceful shutdown)."""
    if callable(previous):
        previous(signum, frame)
    else:  # the default action (or none was installed from Python): restore it and signal again
        signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        signal.raise_signal(signum)


@contextmanager
def _stop_signals(on_stop: Callable[[int, FrameType | None], None]) -> Iterator[dict[int, StopHandler]]:
    """While the server runs, SIGTERM and SIGINT call ``on_stop`` first (main thread only); yields the
    handlers they replaced. Restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield {}
        return
    previous: dict[int, StopHandler] = {int(sig): signal.signal(sig, on_stop) for sig in STOP_SIGNALS}
    try:
        yield previous
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) == on_stop:
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


@asynccontextmanager
async def server_tasks(settings: Settings) -> AsyncIterator[None]:
    """Run the periodic sweep while the body runs, and stop gracefully.

    On the first SIGTERM (or SIGINT), before the server closes any connection -- which would stop
    the scripts streaming answers -- the live turns get the grace period and those still live are
    closed (``stop_process``); then the signal goes on to the server's own handler, which shuts the
    server down. A second signal during the grace period goes on at once. When the server stops for
    another reason, ``stop_process`` runs on exit.
    """
    loop = asyncio.get_running_loop()
    stop_requested = anyio.Event()
    received: list[tuple[int, FrameType | None]] = []

    def on_stop(signum: int, frame: FrameType | None) -> None:
        received.append((signum, frame))
        if len(received) == 1:
            loop.call_soon_threadsafe(stop_requested.set)  # the only loop call safe in a signal handler
        else:
            _pass_on(signum, frame, previous.get(signum))

    async def stop_on_signal() -> None:
        await stop_requested.wait()
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(stop_process, settings)
        signum, frame = received[0]
        _pass_on(signum, frame, previous.get(signum))

    try:
        with _stop_signals(on_stop) as previous:
            async with anyio.create_task_group() as group:
                group.start_soon(sweep_periodically, settings.sweep_interval_s)
                group.start_soon(stop_on_signal)
                try:
                    yield
                finally:
                    group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(stop_process, settings)
