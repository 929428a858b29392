"""run_turn end to end: real SDKs → loopback stub, real PostgreSQL (C10, C14, C15, C16)."""

from __future__ import annotations

import logging
import os
import random
import subprocess
import sys
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlmodel import col, select

from core.assembler import assemble_prompt
from core.atoms import load_atoms
from core.chat import TurnRejected, run_turn
from core.conversations import DEFAULT_TITLE, get_conversation, history
from core.db import NotFound, engine_for, system_session, user_session
from core.pricing import cost_usd
from core.profiles import save_profile
from core.providers.base import Usage
from core.run_leases import sweep_stale_runs
from models import AgentRun
from models.schemas import ProfileIn, VibeIn
from models.types import utcnow
from tests.chat_fixtures import BOTH_DATABASES, ChatEnv
from tests.factories import make_user
from tests.stubs.provider_server import Fault, Reply


def _runs(user_id: uuid.UUID) -> list[AgentRun]:
    with system_session() as s:
        return list(s.exec(select(AgentRun).where(AgentRun.user_id == user_id)).all())


def _turn(env: ChatEnv, message: str = "Should we adopt Kafka?", **kw):
    turn = run_turn(user_id=env.user_id, conversation_id=env.conversation_id, text=message,
                    settings=env.settings, router=env.router, **kw)
    streamed = "".join(turn)
    turn.close()  # as the page does
    return turn.result, streamed


@BOTH_DATABASES
def test_happy_turn_records_everything(chat_env: ChatEnv):
    save_profile(user_id=chat_env.user_id, data=ProfileIn(role="CTO", stack=["Go", "React"], vertical="SaaS"))
    reply = Reply(text="Start with one topic and measure consumer lag.", input_tokens=1200, cached_tokens=200)
    chat_env.stub.set_reply("openai", reply)
    result, streamed = _turn(chat_env, "Should we adopt Kafka?")
    assert streamed == reply.text
    [run] = _runs(chat_env.user_id)
    assert run.status == "ok" and run.output == reply.text
    assert run.user_message == "Should we adopt Kafka?"
    assert (run.provider, run.model, run.fallback_from) == ("openai", "gpt-4o-mini", None)
    # usage as the provider reported it: the stub sent prompt_tokens=1400 with 200 cached
    assert run.input_tokens == 1200 and run.cached_input_tokens == 200
    assert run.output_tokens == reply.completion_tokens
    expected = cost_usd("gpt-4o-mini", Usage(1200, reply.completion_tokens, 200, 0))
    assert expected is not None and run.cost_usd == expected and run.cost_usd > 0
    assert run.ttft_ms is not None and run.latency_ms is not None and 0 <= run.ttft_ms <= run.latency_ms
    prompt = assemble_prompt(ProfileIn(role="CTO", stack=["Go", "React"], vertical="SaaS"), VibeIn(),
                             load_atoms(), agent="general")
    assert run.prompt_sha256 == prompt.sha256
    assert run.atom_versions == [[a, v] for a, v in prompt.atoms]
    assert run.request_id == result.request_id and len(run.request_id) >= 8
    # the exact prompt went to the provider as the system message
    [req] = chat_env.stub.requests("openai")
    assert req.body["messages"][0] == {"role": "system", "content": prompt.text}
    assert req.body["stream_options"] == {"include_usage": True}
    assert get_conversation(user_id=chat_env.user_id,
                            conversation_id=chat_env.conversation_id).title == "Should we adopt Kafka?"


@BOTH_DATABASES
def test_message_is_committed_before_the_provider_is_called(chat_env: ChatEnv):
    turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="durable?",
                    settings=chat_env.settings, router=chat_env.router)
    assert chat_env.stub.requests() == []  # nothing sent yet
    with engine_for(chat_env.settings.database_url).connect() as conn:  # another connection sees it
        status, msg = conn.execute(select(AgentRun.status, AgentRun.user_message)
                                   .where(AgentRun.id == turn.result.run_id)).one()
    assert (status, msg) == ("pending", "durable?")
    assert "".join(turn)
    turn.close()
    assert _runs(chat_env.user_id)[0].status == "ok"


FALLBACK_FAULTS = [
    Fault("rate_limited", retry_after=1), Fault("server_error"), Fault("unavailable"), Fault("overloaded"),
    Fault("slow_first_byte", delay_s=5.0), Fault("reset"), Fault("cut", after_chunks=0),
    Fault("malformed", after_chunks=0),
]


@pytest.mark.parametrize("fault", FALLBACK_FAULTS, ids=lambda f: f.kind)
def test_primary_fault_falls_back_to_secondary(chat_env: ChatEnv, fault: Fault):
    chat_env.stub.set_fault("openai", fault)
    chat_env.stub.set_reply("anthropic", Reply(text="From the fallback provider.", input_tokens=30))
    _, streamed = _turn(chat_env)
    assert streamed == "From the fallback provider."
    [run] = _runs(chat_env.user_id)
    assert run.status == "ok" and run.provider == "anthropic" and run.fallback_from == "openai"
    assert run.input_tokens == 30 and run.cost_usd is not None
    assert len(chat_env.stub.requests("openai")) >= 1 and len(chat_env.stub.requests("anthropic")) == 1


def test_all_providers_down_keeps_the_message_and_says_so(chat_env: ChatEnv):
    chat_env.stub.set_fault("openai", Fault("unavailable"))
    chat_env.stub.set_fault("anthropic", Fault("overloaded"))
    result, streamed = _turn(chat_env, "Is anyone there?")
    assert streamed == ""
    [run] = _runs(chat_env.user_id)
    assert run.status == "error" and run.error_code == "server"
    assert run.user_message == "Is anyone there?" and run.request_id == result.request_id
    assert result.request_id in result.user_message and "saved" in result.user_message
    assert run.fallback_from == "openai,anthropic"


def test_cut_mid_stream_is_interrupted_with_partial_output(chat_env: ChatEnv):
    chat_env.stub.set_reply("openai", Reply(text="one two three four five six"))
    chat_env.stub.set_fault("openai", Fault("cut", after_chunks=3))
    result, streamed = _turn(chat_env)
    [run] = _runs(chat_env.user_id)
    assert run.status == "interrupted" and run.output == streamed == "one two three "
    assert run.provider == "openai" and chat_env.stub.requests("anthropic") == []
    assert result.request_id in result.user_message


def test_auth_error_does_not_fall_back(chat_env: ChatEnv):
    chat_env.stub.set_fault("openai", Fault("unauthorized"))
    _turn(chat_env)
    [run] = _runs(chat_env.user_id)
    assert run.status == "error" and run.error_code == "auth"
    assert chat_env.stub.requests("anthropic") == []


@BOTH_DATABASES
def test_history_is_sent_and_paged(chat_env: ChatEnv):
    for i in range(3):
        chat_env.stub.set_reply("openai", Reply(text=f"answer {i}"))
        _turn(chat_env, f"question {i}")
    last = chat_env.stub.requests("openai")[-1].body
    contents = [m["content"] for m in last["messages"] if m["role"] != "system"]
    assert contents == ["question 0", "answer 0", "question 1", "answer 1", "question 2"]
    page = history(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, limit=2)
    assert [r.user_message for r in page.runs] == ["question 1", "question 2"] and page.has_earlier
    earlier = history(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, limit=2,
                      before=page.earlier)
    assert [r.user_message for r in earlier.runs] == ["question 0"] and not earlier.has_earlier
    assert earlier.earlier is None


@BOTH_DATABASES
def test_history_pages_keep_runs_that_share_a_timestamp(chat_env: ChatEnv):
    """Paging back by (created_at, id): runs with the same created_at on both sides of a page
    boundary are neither skipped nor shown twice (a created_at-only cursor skipped one)."""
    for i in range(5):
        _turn(chat_env, f"q{i}")
    same = _runs(chat_env.user_id)[0].created_at
    with system_session() as s:
        s.execute(update(AgentRun).where(col(AgentRun.user_id) == chat_env.user_id).values(created_at=same))
    seen: list[str] = []
    page = history(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, limit=2)
    while True:
        seen = [r.user_message for r in page.runs] + seen
        if page.earlier is None:
            break
        page = history(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, limit=2,
                       before=page.earlier)
    assert sorted(seen) == [f"q{i}" for i in range(5)] and len(seen) == 5


@BOTH_DATABASES
@pytest.mark.parametrize(
    "bad", ["", "   \n\t ", "x" * 8001, "hello\x00world", "bell\x07", "\u202eevil"],
    ids=["empty", "whitespace", "too-long", "nul", "bell", "rtl-override"],
)
def test_bad_input_is_rejected_with_no_row_and_no_call(chat_env: ChatEnv, bad: str):
    with pytest.raises(TurnRejected) as info:
        run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text=bad,
                 settings=chat_env.settings, router=chat_env.router)
    assert info.value.reason == "invalid" and info.value.message.startswith("Message not sent")
    assert _runs(chat_env.user_id) == [] and chat_env.stub.requests() == []


@BOTH_DATABASES
def test_another_users_conversation_is_not_found(chat_env: ChatEnv):
    other = make_user()
    theirs = chat_env.new_conversation(user_id=other)
    with pytest.raises(NotFound):
        run_turn(user_id=chat_env.user_id, conversation_id=theirs, text="peek", settings=chat_env.settings,
                 router=chat_env.router)
    assert _runs(chat_env.user_id) == [] and _runs(other) == [] and chat_env.stub.requests() == []


@BOTH_DATABASES
def test_rate_limit_rejects_before_storing(chat_env: ChatEnv, set_env):
    from core import rate_limits

    set_env(CHAT_TURNS_PER_MINUTE="2", PROVIDERS="openai,anthropic")
    rate_limits.reset_limiter_cache()
    for _ in range(2):
        _turn(chat_env)
    with pytest.raises(TurnRejected) as info:
        _turn(chat_env)
    assert info.value.reason == "chat_turns" and "per minute" in info.value.message
    assert len(_runs(chat_env.user_id)) == 2


def test_unknown_model_costs_null_and_warns(chat_env: ChatEnv, caplog):
    chat_env.stub.set_reply("openai", Reply(text="ok", model="gpt-unknown-2099"))
    from core.providers.router import ProviderRouter, build_providers

    providers = build_providers(chat_env.settings)
    providers[0].model = "gpt-unknown-2099"  # type: ignore[misc]
    router = ProviderRouter(providers, breaker_failures=3, breaker_cooldown_s=30)
    with caplog.at_level(logging.WARNING, logger="advisor.pricing"):
        turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="cost?",
                        settings=chat_env.settings, router=router)
        "".join(turn)
        turn.close()
    [run] = _runs(chat_env.user_id)
    assert run.status == "ok" and run.model == "gpt-unknown-2099" and run.cost_usd is None
    assert run.input_tokens is not None
    assert any("gpt-unknown-2099" in r.getMessage() for r in caplog.records)


def test_no_loss_when_the_consumer_dies_at_random_points(chat_env: ChatEnv):
    """200 turns, each consumer killed at a random point: every message stored, none left pending."""
    rng = random.Random(7)
    chat_env.stub.set_reply("openai", Reply(text=" ".join(f"w{i}" for i in range(12))))
    messages = []
    for i in range(200):
        msg = f"turn {i} {uuid.uuid4().hex[:6]}"
        messages.append(msg)
        turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text=msg,
                        settings=chat_env.settings, router=chat_env.router)
        kill_at = rng.randint(0, 14)
        mode = rng.choice(["close", "abandon"])
        stream = iter(turn)
        try:
            for n, _ in enumerate(stream):
                if n == kill_at:
                    raise RuntimeError("consumer died")
        except RuntimeError:
            if mode == "close":  # the page's script stops: the generator is closed
                stream.close()  # type: ignore[attr-defined]
            # "abandon": the generator is left unfinished, as if the process had died
        if mode == "abandon":
            del stream, turn
    sweep_stale_runs(now=utcnow() + timedelta(hours=1))  # every run still pending counts as stale
    runs = _runs(chat_env.user_id)
    assert sorted(r.user_message for r in runs) == sorted(messages)
    assert not [r for r in runs if r.status == "pending"]
    assert {r.status for r in runs} <= {"ok", "interrupted"}


def test_recovery_sweep_spares_fresh_pending_runs(chat_env: ChatEnv):
    turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="in flight",
                    settings=chat_env.settings, router=chat_env.router)
    assert sweep_stale_runs() == []  # its heartbeat is fresh: inserted with the run
    assert _runs(chat_env.user_id)[0].status == "pending"
    "".join(turn)
    turn.close()
    assert _runs(chat_env.user_id)[0].status == "ok"


def test_database_connections_dropped_mid_stream_lose_nothing(chat_env: ChatEnv, pg_url):
    """C16: every server connection of this database is killed while the answer streams."""
    chat_env.stub.set_reply("openai", Reply(text="alpha beta gamma delta", chunk_delay_s=0.05))
    turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="survive?",
                    settings=chat_env.settings, router=chat_env.router)
    dbname = pg_url.rsplit("/", 1)[1]
    out = []
    for i, piece in enumerate(turn):
        out.append(piece)
        if i == 1:
            import psycopg

            from tests.conftest import PG_ADMIN_DSN

            with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
                killed = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,)).fetchone()
            assert killed is not None and killed[0] >= 1
    turn.close()
    [run] = _runs(chat_env.user_id)
    assert run.status == "ok" and run.output == "".join(out) == "alpha beta gamma delta"


def test_fifty_concurrent_turns_lose_nothing(chat_env: ChatEnv):
    users = [make_user() for _ in range(10)]
    convs = {u: chat_env.new_conversation(user_id=u) for u in users}
    errors: list[BaseException] = []

    def worker(u: uuid.UUID, n: int) -> None:
        try:
            turn = run_turn(user_id=u, conversation_id=convs[u], text=f"q{n}", settings=chat_env.settings,
                            router=chat_env.router)
            assert "".join(turn)
            assert turn.result.status == "ok"
            turn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(users[i % 10], i)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with system_session() as s:
        rows = s.execute(text("SELECT status, count(*) FROM agent_runs GROUP BY status")).all()
    assert dict(rows) == {"ok": 50}


def test_ownership_of_history(chat_env: ChatEnv):
    other = make_user()
    with pytest.raises(NotFound):
        history(user_id=other, conversation_id=chat_env.conversation_id)
    with user_session(other) as s:
        assert s.execute(text("SELECT count(*) FROM conversations")).scalar_one() == 0


@BOTH_DATABASES
def test_quota_reached_rejects_before_storing(chat_env: ChatEnv, set_env):
    """The quota is read in the same transaction that stores the message: a reached quota stores
    nothing, calls no provider, leaves the title alone."""
    set_env(TOKENS_PER_DAY="1000", PROVIDERS="openai,anthropic")
    chat_env.stub.set_reply("openai", Reply(text="fine", input_tokens=900, output_tokens=100))
    first, _ = _turn(chat_env, "first question")
    assert first.status == "ok"  # 1,000 tokens used: the quota is reached
    fresh = chat_env.new_conversation()
    with pytest.raises(TurnRejected) as info:
        run_turn(user_id=chat_env.user_id, conversation_id=fresh, text="one more", settings=chat_env.settings,
                 router=chat_env.router)
    assert info.value.reason == "tokens_per_day"
    assert info.value.message.startswith("Daily token quota reached: 1,000 of 1,000 tokens used today")
    assert [r.user_message for r in _runs(chat_env.user_id)] == ["first question"]
    assert len(chat_env.stub.requests("openai")) == 1
    assert get_conversation(user_id=chat_env.user_id, conversation_id=fresh).title == DEFAULT_TITLE


@BOTH_DATABASES
def test_title_comes_from_the_first_message_only(chat_env: ChatEnv):
    _turn(chat_env, "What about Kafka?")
    _turn(chat_env, "And Pulsar?")
    assert get_conversation(user_id=chat_env.user_id,
                            conversation_id=chat_env.conversation_id).title == "What about Kafka?"


@BOTH_DATABASES
def test_interrupted_answer_keeps_the_input_tokens_it_was_billed_for(chat_env: ChatEnv, set_env):
    """Anthropic reports the input counts when the stream starts: a cut answer records them (and the
    quota counts them); its output count and cost were never reported, so they stay unknown."""
    from core.providers.router import build_router, reset_router_cache
    from core.quotas import usage_summary
    from core.settings import get_settings

    set_env(PROVIDERS="anthropic,openai")
    reset_router_cache()
    settings = get_settings()
    chat_env.stub.set_reply("anthropic", Reply(text="one two three four", input_tokens=900, cached_tokens=100))
    chat_env.stub.set_fault("anthropic", Fault("cut", after_chunks=2))
    turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="q",
                    settings=settings, router=build_router(settings))
    streamed = "".join(turn)
    turn.close()
    [run] = _runs(chat_env.user_id)
    assert run.status == "interrupted" and run.output == streamed == "one two "
    assert run.provider == "anthropic"
    assert (run.input_tokens, run.cached_input_tokens, run.cache_write_tokens) == (900, 100, 0)
    assert run.output_tokens is None and run.cost_usd is None
    assert usage_summary(user_id=chat_env.user_id).tokens_today == 1000


SQLITE_ONLY_PROCESS = """
import sys
from core.db import migrate
from core.chat import run_turn
from core.conversations import create_conversation
from models.schemas import ConversationIn
from tests.factories import make_user
migrate()
user = make_user()
conv = create_conversation(user_id=user, data=ConversationIn(agent="general")).id
turn = run_turn(user_id=user, conversation_id=conv, text="Hello?")
assert "".join(turn) and turn.result.status == "ok", turn.result
print(sorted(m for m in sys.modules if m == "psycopg" or m.startswith("psycopg.")))
"""


def test_a_sqlite_process_never_loads_the_postgresql_driver(tmp_path):
    """``make run`` on SQLite: a whole turn (demo provider) without importing psycopg."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    env.update(ADVISOR_DATABASE_URL=f"sqlite:///{tmp_path / 'advisor.db'}", ADVISOR_PROVIDERS="demo",
               ADVISOR_DEMO_DELAY_MS="0", ADVISOR_GUARD="off")
    out = subprocess.run([sys.executable, "-c", SQLITE_ONLY_PROCESS], env=env, capture_output=True, text=True,
                         timeout=120, check=False, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


@BOTH_DATABASES
def test_a_turn_closed_before_its_stream_started_is_recorded_not_left_pending(chat_env: ChatEnv):
    """The page was rerun between accepting the message and showing the answer: closing the turn
    records it (message kept, interrupted / cancelled, no provider call) instead of leaving it
    pending until the next restart's sweep. Closing a started or finished turn changes nothing more."""
    turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="Never shown?",
                    settings=chat_env.settings, router=chat_env.router)
    turn.close()
    [run] = _runs(chat_env.user_id)
    assert (run.user_message, run.status, run.error_code, run.output) == ("Never shown?", "interrupted",
                                                                          "cancelled", "")
    assert chat_env.stub.requests() == []  # no provider was called
    assert sweep_stale_runs(now=utcnow() + timedelta(hours=1)) == []  # nothing left pending
    turn.close()  # twice: nothing more happens
    assert [(r.status, r.error_code) for r in _runs(chat_env.user_id)] == [("interrupted", "cancelled")]

    started = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="Half?",
                       settings=chat_env.settings, router=chat_env.router)
    next(iter(started))
    started.close()
    done = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="Whole?",
                    settings=chat_env.settings, router=chat_env.router)
    "".join(done)
    done.close()
    by_message = {r.user_message: (r.status, r.error_code) for r in _runs(chat_env.user_id)}
    assert by_message["Half?"] == ("interrupted", "cancelled") and by_message["Whole?"] == ("ok", None)


def _preview_prompt(user_id: uuid.UUID):  # type: ignore[no-untyped-def]
    """What the prompt preview page shows (core.profiles + the assembler)."""
    from core import profiles
    from core.atoms import app_atoms

    profile = profiles.get_profile(user_id=user_id)
    assert profile is not None
    return assemble_prompt(profile, profiles.active_vibe(user_id=user_id), app_atoms(), agent="general")


@BOTH_DATABASES
def test_values_stored_before_a_rule_tightened_give_the_previewed_prompt(chat_env: ChatEnv):
    """A role longer than today's limit (the column allows it) and a vibe name with a character the
    rules now refuse: the turn sends the prompt the preview shows (it used to replace the profile
    with role "Other", and the vibe name made every turn fail with an internal error)."""
    from models import UserProfile, VibeConfig

    with system_session() as s:
        s.add(UserProfile(user_id=chat_env.user_id, role="Head of Platform " + "x" * 53,
                          stack=["Go", "Kafka"], vertical="Fintech"))
        s.add(VibeConfig(user_id=chat_env.user_id, name="Calm\u202e", is_active=True, brevity=8))
    chat_env.stub.set_reply("openai", Reply(text="ok"))
    preview = _preview_prompt(chat_env.user_id)
    _turn(chat_env, "hi")
    [run] = _runs(chat_env.user_id)
    assert run.status == "ok", (run.status, run.error_code)
    assert run.prompt_sha256 == preview.sha256


@BOTH_DATABASES
def test_the_row_is_finished_when_the_stream_ends(chat_env: ChatEnv):
    """The run's row is finished in the stream's own ``finally``: once the iteration has ended,
    another connection reads the answer, its usage and status, with no ``close()`` in between."""
    chat_env.stub.set_reply("openai", Reply(text="Measure first."))
    turn = run_turn(user_id=chat_env.user_id, conversation_id=chat_env.conversation_id, text="Split it?",
                    settings=chat_env.settings, router=chat_env.router)
    assert "".join(turn) == "Measure first."
    with engine_for(chat_env.settings.database_url).connect() as conn:
        status, output, tokens = conn.execute(select(AgentRun.status, AgentRun.output, AgentRun.output_tokens)
                                              .where(AgentRun.id == turn.result.run_id)).one()
    assert (status, output) == ("ok", "Measure first.") and tokens is not None
