"""An app process for the process-death tests: one chat turn, and optionally the periodic sweep.

    python -m tests.process_turn --user U --conversation C --text T [--sweep]

Settings come from the environment (``ADVISOR_*``: the database, the loopback stub as provider,
short heartbeats). Prints ``run <id>`` once the message is stored, ``delta <n>`` per streamed chunk
and ``finished <status> <error_code>`` at the end of the turn, each line flushed. With ``--sweep``,
the turn runs in a worker thread while ``core.server_tasks.sweep_periodically`` runs as the app
server runs it, and the process keeps sweeping after the turn until it is stopped.
"""

from __future__ import annotations

import argparse
import uuid

import anyio

from core.chat import run_turn
from core.server_tasks import sweep_periodically
from core.settings import get_settings


def turn(user: uuid.UUID, conversation: uuid.UUID, text: str) -> None:
    started = run_turn(user_id=user, conversation_id=conversation, text=text)
    print(f"run {started.result.run_id}", flush=True)
    try:
        for n, _delta in enumerate(started, 1):
            print(f"delta {n}", flush=True)
    finally:
        started.close()
    print(f"finished {started.result.status} {started.result.error_code}", flush=True)


async def turn_while_sweeping(user: uuid.UUID, conversation: uuid.UUID, text: str) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(sweep_periodically, get_settings().sweep_interval_s)
        await anyio.to_thread.run_sync(turn, user, conversation, text)
        await anyio.sleep_forever()  # keep sweeping until stopped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", type=uuid.UUID, required=True)
    parser.add_argument("--conversation", type=uuid.UUID, required=True)
    parser.add_argument("--text", required=True)
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args()
    if args.sweep:
        anyio.run(turn_while_sweeping, args.user, args.conversation, args.text)
    else:
        turn(args.user, args.conversation, args.text)


if __name__ == "__main__":
    main()
