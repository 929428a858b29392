"""Stopping an answer while it streams (issue 19): the turn is closed early by its consumer.

The chat page's stop control ends the script run; the page's ``finally`` closes the turn. The run is
then ``interrupted`` with ``error_code`` ``cancelled`` (the one record for "the user ended the answer":
the stop control, a rerun, a closed tab), keeps the partial answer, and the input tokens the provider
had reported (Anthropic: at the start of the stream; OpenAI reports usage only at the end, so a stopped
OpenAI answer has none). The next message is accepted at once.
"""

from __future__ import annotations

import uuid

from sqlmodel import col, select

from core.chat import run_turn
from core.db import system_session
from core.providers.router import build_router, reset_router_cache
from core.quotas import usage_summary
from core.settings import get_settings
from models import AgentRun
from tests.chat_fixtures import BOTH_DATABASES, ChatEnv
from tests.stubs.provider_server import Fault, Reply


def _runs(user_id: uuid.UUID) -> list[AgentRun]:
    with system_session() as s:
        return list(s.exec(select(AgentRun).where(AgentRun.user_id == user_id)
                           .order_by(col(AgentRun.created_at))).all())


@BOTH_DATABASES
def test_a_stopped_answer_keeps_its_partial_text_and_input_tokens(chat_env: ChatEnv, set_env):
    set_env(PROVIDERS="anthropic,openai")
    reset_router_cache()
    settings = get_settings()
    router = build_router(settings)
    words = " ".join(f"w{i}" for i in range(40))
    chat_env.stub.set_reply("anthropic", Reply(text=words, input_tokens=900, cached_tokens=100))
    chat_env.stub.set_fault("anthropic", Fault("stall", after_chunks=3, delay_s=30))  # a slow answer
    turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="Long one?",
                    settings=settings, router=router)
    deltas = iter(turn)
    shown = "".join(next(deltas) for _ in range(3))
    turn.close()  # the stop: the consumer ends the stream
    [run] = _runs(chat_env.user_id)
    assert (run.status, run.error_code) == ("interrupted", "cancelled")
    assert run.output == shown == "w0 w1 w2 "
    assert (run.input_tokens, run.cached_input_tokens) == (900, 100)
    assert run.output_tokens is None and run.cost_usd is None  # never reported: unknown, not guessed
    assert usage_summary(user_id=chat_env.user_id).tokens_today == 1000

    chat_env.stub.set_fault("anthropic", None)
    chat_env.stub.set_reply("anthropic", Reply(text="Short answer."))
    nxt = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="Next?",
                   settings=settings, router=router)
    assert "".join(nxt) == "Short answer."
    nxt.close()
    assert [r.status for r in _runs(chat_env.user_id)] == ["interrupted", "ok"]
    # the stopped exchange is history for the next answer, as far as it went
    sent = chat_env.stub.requests("anthropic")[-1].body["messages"]
    assert sent[-3:] == [{"role": "user", "content": "Long one?"}, {"role": "assistant", "content": "w0 w1 w2 "},
                         {"role": "user", "content": "Next?"}]


def test_a_stopped_openai_answer_has_no_token_counts(chat_env: ChatEnv):
    chat_env.stub.set_reply("openai", Reply(text=" ".join(f"w{i}" for i in range(40))))
    chat_env.stub.set_fault("openai", Fault("stall", after_chunks=2, delay_s=30))
    turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="Long one?",
                    settings=chat_env.settings, router=chat_env.router)
    deltas = iter(turn)
    next(deltas), next(deltas)
    turn.close()
    [run] = _runs(chat_env.user_id)
    assert (run.status, run.error_code, run.output) == ("interrupted", "cancelled", "w0 w1 ")
    assert run.input_tokens is None and run.output_tokens is None and run.cost_usd is None
