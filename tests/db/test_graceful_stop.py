"""A graceful stop on the real turn path (``core.run_leases.close_live_turns``, called by the app
server on SIGTERM before it closes any connection): a turn that ends within the grace period is
recorded as finished normally; one still streaming after it is closed ``interrupted`` / ``shutdown``
with its partial output, and keeps that cause when its script is then stopped. (Against ``streamlit
run`` itself: tests/e2e/test_interrupted_turns.py.)"""

from __future__ import annotations

import threading

from sqlmodel import select

from core import run_leases
from core.chat import run_turn
from core.db import system_session
from models import AgentRun
from tests.chat_fixtures import ChatEnv
from tests.stubs.provider_server import Reply

WORDS = [f"w{i}" for i in range(40)]


def _run(env: ChatEnv) -> AgentRun:
    with system_session() as s:
        [run] = s.exec(select(AgentRun).where(AgentRun.user_id == env.user_id)).all()
        return run


def test_a_turn_that_ends_within_the_grace_period_is_finished_normally(chat_env: ChatEnv):
    chat_env.stub.set_reply("openai", Reply(text=" ".join(WORDS), chunk_delay_s=0.05))  # about 2 s
    turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="Quick one?",
                    settings=chat_env.settings, router=chat_env.router)
    stream = iter(turn)
    next(stream)  # streaming
    reader = threading.Thread(target=lambda: "".join(stream))
    reader.start()
    assert run_leases.close_live_turns(grace_s=10) == 0  # waited for it
    reader.join(10)
    turn.close()
    run = _run(chat_env)
    assert (run.status, run.error_code, run.output) == ("ok", None, " ".join(WORDS))


def test_a_turn_still_streaming_after_the_grace_period_is_closed_as_shutdown(chat_env: ChatEnv):
    chat_env.stub.set_reply("openai", Reply(text=" ".join(WORDS), chunk_delay_s=0.2))  # about 8 s
    turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="Long one?",
                    settings=chat_env.settings, router=chat_env.router)
    stream = iter(turn)
    shown = [next(stream) for _ in range(5)]

    assert run_leases.close_live_turns(grace_s=0.3) == 1
    run = _run(chat_env)
    assert (run.status, run.error_code) == ("interrupted", "shutdown")
    assert run.output.startswith("".join(shown)) and run.output != " ".join(WORDS)

    turn.close()  # then the server stops the page's script: the turn ends as the stop closed it
    run = _run(chat_env)
    assert (run.status, run.error_code) == ("interrupted", "shutdown")
    assert run.output.startswith("".join(shown)) and turn.result.user_message.startswith(
        "The answer was cut off. The server stopped while answering.")
