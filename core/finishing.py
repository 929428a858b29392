"""The last write of a chat turn, off the caller's thread.

A turn's row is finished (output, usage, cost, status) once its stream has ended. ``core.chat``
hands that write to ``submit`` so the caller -- the page that streamed the answer -- is not held for
a database commit it does not need to show the answer. What must see the finished row waits for it:

- ``wait_run``: ``Turn.close()`` (the chat page closes every turn before it redraws from the database);
- ``wait_user``: the user's next turn, before it reads its history and quota figures, and the
  privacy export and deletion, before they read or delete the user's rows;
- the interpreter: the executor's threads are joined at exit, so a process that stops normally
  finishes every run it answered. One that is killed leaves the run ``pending`` for the recovery
  sweep (``core.chat.recover_stale_runs``), with the partial output of its last checkpoint.

Pending writes are known to this process only: one user's session lives in one process.
This module imports nothing heavy, so the privacy paths can use it without loading the SDKs.
"""

from __future__ import annotations

import contextvars
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

WORKERS = 4

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_by_run: dict[uuid.UUID, Future[None]] = {}
_by_user: dict[uuid.UUID, set[uuid.UUID]] = {}


def submit(user_id: uuid.UUID, run_id: uuid.UUID, write: Callable[[], None]) -> None:
    """Run ``write`` (which must not raise) on a background thread, in the caller's context (so the
    request id stays on what it logs), tracked as the pending finish of ``run_id`` of ``user_id``."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(WORKERS, thread_name_prefix="advisor-finish")
        try:
            future = _executor.submit(contextvars.copy_context().run, write)
        except RuntimeError:  # the interpreter is shutting down (a turn's stream finalised at exit)
            future = None
        if future is not None:
            _by_run[run_id] = future
            _by_user.setdefault(user_id, set()).add(run_id)
    if future is None:
        write()  # no thread can be started any more: write it here
        return
    future.add_done_callback(lambda _f: _forget(user_id, run_id))


def _forget(user_id: uuid.UUID, run_id: uuid.UUID) -> None:
    with _lock:
        _by_run.pop(run_id, None)
        runs = _by_user.get(user_id)
        if runs is not None:
            runs.discard(run_id)
            if not runs:
                del _by_user[user_id]


def wait_run(run_id: uuid.UUID, timeout: float | None = None) -> bool:
    """Wait until the run's row is finished; False if ``timeout`` ran out first."""
    with _lock:
        future = _by_run.get(run_id)
    return _wait([future] if future is not None else [], timeout)


def wait_user(user_id: uuid.UUID, timeout: float | None = None) -> bool:
    """Wait for every pending finish of this user's runs; False if ``timeout`` ran out first."""
    with _lock:
        futures = [_by_run[r] for r in _by_user.get(user_id, ()) if r in _by_run]
    return _wait(futures, timeout)


def wait_all(timeout: float | None = None) -> bool:
    """Wait for every pending finish of this process; False if ``timeout`` ran out first."""
    with _lock:
        futures = list(_by_run.values())
    return _wait(futures, timeout)


def _wait(futures: Sequence[Future[None]], timeout: float | None) -> bool:
    deadline = None if timeout is None else time.monotonic() + timeout
    for future in futures:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            future.result(left)
        except TimeoutError:
            return False
    return True
