"""What a chat turn adds on top of the provider call: ``core.chat.run_turn`` on PostgreSQL versus a
bare SDK streaming call to the same loopback stub, interleaved call by call in the same run.

    python -m bench.turn_overhead [--quick] [--turns N] [--concurrent N] [--redis URL] [--profile]
                                  [--peer PYTHON]

Baseline (measured in the same run, same process, same stub, same reply): the official ``openai``
SDK's ``chat.completions.create(stream=True, stream_options={"include_usage": True})``, consumed in
a plain loop, sending **the exact request body our layer sent for the previous turn** (read back
from the stub), so both sides move the same bytes.
Measured: ``run_turn(...)`` then iterating the ``Turn`` to its end -- validation, rate limit and
quotas, the committed ``pending`` row, context and history, prompt assembly, the provider router,
and the row's final write, made in the stream's own ``finally`` before the iteration ends.

- TTFT: from the call to the first non-empty text delta; total: to the end of the stream.
- Added time = p50 of the per-pair differences (``run_turn`` minus the bare call of the same pair);
  each side goes first in turn.
- Cases: a fresh conversation per turn (the message is the conversation's only one: also pays the
  title), and a conversation holding 500 prior runs (bulk-inserted; the prompt then carries
  ``history_turns_in_prompt`` turns of history).
- Concurrency: 50 turns on 50 threads at once (50 users): no error, every row ``ok`` and present.
- ``--peer .peer-venv/bin/python``: LiteLLM's Router against the same stub in the same run
  (``bench/peer_litellm.py``, its own process and virtualenv).

Settings: rate limit and quotas set high so they never refuse (they are still checked: the
limiter in memory, the quota sums in PostgreSQL), ``ADVISOR_PROVIDERS=openai`` pointing at the
stub with a fake key, the read-only guard off (it is a process-wide audit hook installed by the
app's entry script, not part of ``run_turn``). ``--redis URL`` puts the limiter in Redis instead.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import logging
import os
import pstats
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai
from sqlalchemy import insert, text

from bench.common import create_database, drop_database, goal, machine, pct

FAKE_OPENAI_KEY = "sk-bench-not-a-real-key-000000000000"
FAKE_ANTHROPIC_KEY = "sk-ant-bench-not-a-real-key-0000000"
MODEL = "gpt-4o-mini"
REPLY_WORDS = 200  # the same reply as bench/provider_baseline.py: 200 one-word chunks
REPLY_INPUT_TOKENS = 400
HISTORY_RUNS = 500
QUESTION = "Should we split the monolith this quarter, given a team of twelve? (turn {i})"
ANSWER_SEED = (
    "Split only the part with its own scaling or release pressure; keep one deploy pipeline, one "
    "database owner per table, and measure lead time before and after. "
) * 4


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# ------------------------------------------------------------------------------------------------
# environment and data (shared with bench/load.py)
# ------------------------------------------------------------------------------------------------
def configure_app(
    *,
    database_url: str,
    openai_base_url: str,
    anthropic_base_url: str | None = None,
    redis_url: str | None = None,
    key_prefix: str | None = None,
    extra: dict[str, str] | None = None,
) -> None:
    """Point the app's settings at the bench database and the stub; limits high; caches reset."""
    for key in list(os.environ):
        if key.startswith("ADVISOR_") and not key.startswith(("ADVISOR_BENCH_", "ADVISOR_TEST_")):
            del os.environ[key]
    env = {
        "DATABASE_URL": database_url,
        "PROVIDERS": "openai,anthropic" if anthropic_base_url else "openai",
        "OPENAI_API_KEY": FAKE_OPENAI_KEY,
        "OPENAI_BASE_URL": openai_base_url,
        "OPENAI_MODEL": MODEL,
        "CHAT_TURNS_PER_MINUTE": "10000",
        "TOKENS_PER_DAY": str(10**12),
        "COST_PER_MONTH_USD": str(10**9),
        "BREAKER_FAILURES": "100",
        "PROVIDER_FIRST_TOKEN_TIMEOUT_S": "20",
        "PROVIDER_TOTAL_TIMEOUT_S": "60",
        "GUARD": "off",
        "MIGRATE_ON_START": "false",
        "LOG_LEVEL": "WARNING",
    }
    if anthropic_base_url:
        env.update(ANTHROPIC_API_KEY=FAKE_ANTHROPIC_KEY, ANTHROPIC_BASE_URL=anthropic_base_url,
                   ANTHROPIC_MODEL="claude-sonnet-4-5")
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra or {})
    for key, value in env.items():
        os.environ[f"ADVISOR_{key}"] = value

    from core import db as core_db
    from core import rate_limits
    from core.providers.router import reset_router_cache
    from core.settings import reset_settings_cache

    reset_settings_cache()
    core_db.dispose_engines()
    reset_router_cache()
    rate_limits.reset_limiter_cache(key_prefix=key_prefix)


def make_user(email: str, *, quota_tokens_per_day: int | None = None) -> uuid.UUID:
    """A user with a profile and an active vibe (what a real chat turn assembles its prompt from)."""
    from core.db import system_session, user_session
    from models import User, UserProfile, VibeConfig

    user = User(email=email.lower(), auth_provider="local", quota_tokens_per_day=quota_tokens_per_day)
    with system_session() as s:
        s.add(user)
    with user_session(user.id) as s:
        s.add(UserProfile(user_id=user.id, role="CTO", stack=["Python", "PostgreSQL", "Kubernetes"],
                          vertical="SaaS"))
        s.add(VibeConfig(user_id=user.id, name="default", is_active=True))
    return user.id


def make_conversation(user_id: uuid.UUID, agent: str = "general") -> uuid.UUID:
    from core.conversations import create_conversation
    from models.schemas import ConversationIn

    return create_conversation(user_id=user_id, data=ConversationIn(agent=agent)).id


def bulk_insert_runs(user_id: uuid.UUID, conversation_id: uuid.UUID, n: int) -> None:
    """``n`` finished runs in one multi-row INSERT (as the bench's login role, which bypasses RLS)."""
    from core.db import get_engine
    from models import AgentRun

    start = datetime.now(UTC) - timedelta(seconds=n + 60)
    rows = [
        {
            "id": uuid.uuid4(), "user_id": user_id, "conversation_id": conversation_id, "agent": "general",
            "created_at": start + timedelta(seconds=i), "user_message": f"prior question {i}: " + "why? " * 20,
            "output": f"prior answer {i}: " + ANSWER_SEED, "status": "ok", "provider": "openai",
            "model": MODEL, "input_tokens": 900, "output_tokens": 150, "cost_usd": None,
            "request_id": uuid.uuid4().hex[:12],
        }
        for i in range(n)
    ]
    with get_engine().begin() as conn:
        conn.execute(insert(AgentRun.__table__), rows)  # type: ignore[attr-defined]
        conn.execute(text("ANALYZE agent_runs"))


def stub_reply() -> Any:
    from tests.stubs.provider_server import Reply

    # numbered words: LiteLLM (the peer, --peer) refuses a stream that repeats one chunk 100 times
    return Reply(text=" ".join(f"word{i}" for i in range(REPLY_WORDS)), input_tokens=REPLY_INPUT_TOKENS,
                 output_tokens=REPLY_WORDS)


# ------------------------------------------------------------------------------------------------
# the two sides of a pair
# ------------------------------------------------------------------------------------------------
@dataclass
class Timing:
    ttft_ms: float
    total_ms: float


def bare_call(client: openai.OpenAI, body: dict[str, Any]) -> Timing:
    """The baseline: the SDK's streaming call with the given request body, consumed in a loop."""
    t0 = time.perf_counter()
    ttft: float | None = None
    parts: list[str] = []
    stream = client.chat.completions.create(model=body["model"], messages=body["messages"], stream=True,
                                            stream_options={"include_usage": True})
    with stream:
        for chunk in stream:
            piece = chunk.choices[0].delta.content if chunk.choices else None
            if piece:
                if ttft is None:
                    ttft = time.perf_counter() - t0
                parts.append(piece)
    total = time.perf_counter() - t0
    if not parts:
        raise RuntimeError("bare call got no text")
    return Timing((ttft or total) * 1000, total * 1000)


def turn_call(user_id: uuid.UUID, conversation_id: uuid.UUID, message: str) -> Timing:
    from core.chat import run_turn

    t0 = time.perf_counter()
    ttft: float | None = None
    turn = run_turn(user_id=user_id, conversation_id=conversation_id, text=message)
    for delta in turn:
        if ttft is None and delta:
            ttft = time.perf_counter() - t0
    total = time.perf_counter() - t0  # the run's row is finished: the stream's finally has run
    turn.close()
    if turn.result.status != "ok":
        raise RuntimeError(f"turn failed: {turn.result.status} {turn.result.error_code}")
    return Timing((ttft or total) * 1000, total * 1000)


@dataclass
class CaseResult:
    name: str
    bare: list[Timing]
    turn: list[Timing]

    def series(self, side: str, what: str) -> list[float]:
        return [getattr(t, what) for t in getattr(self, side)]

    def added(self, what: str) -> list[float]:
        return [t - b for t, b in zip(self.series("turn", what), self.series("bare", what), strict=True)]

    def report(self) -> None:
        print(f"\n[{self.name}] {len(self.turn)} pairs")
        for what, label in (("ttft_ms", "TTFT "), ("total_ms", "total")):
            b, t, a = self.series("bare", what), self.series("turn", what), self.added(what)
            print(f"  {label} bare SDK p50 {pct(b, 50):7.3f} ms  p95 {pct(b, 95):7.3f} ms")
            print(f"  {label} run_turn p50 {pct(t, 50):7.3f} ms  p95 {pct(t, 95):7.3f} ms")
            print(f"  {label} added    p50 {pct(a, 50):7.3f} ms  p95 {pct(a, 95):7.3f} ms (per-pair differences)")


def run_case(
    name: str,
    *,
    stub: Any,
    client: openai.OpenAI,
    user_id: uuid.UUID,
    conversation_for: Callable[[int], uuid.UUID],
    pairs: int,
    warmup: int,
) -> CaseResult:
    out: dict[str, list[Timing]] = {"bare": [], "turn": []}

    def last_body() -> dict[str, Any]:
        body = stub.requests("openai")[-1].body
        return {"model": body["model"], "messages": body["messages"]}

    # warm-up: a turn first, so the bare side has our body to replay
    for i in range(warmup):
        turn_call(user_id, conversation_for(i), QUESTION.format(i=f"w{i}"))
        bare_call(client, last_body())
    gc.collect()
    for i in range(pairs):
        conv = conversation_for(warmup + i)
        for side in (("bare", "turn") if i % 2 else ("turn", "bare")):  # each side goes first in turn
            if side == "turn":
                out["turn"].append(turn_call(user_id, conv, QUESTION.format(i=i)))
            else:
                out["bare"].append(bare_call(client, last_body()))
    return CaseResult(name, out["bare"], out["turn"])


def run_peer(python: str, stub: Any, pairs: int, warmup: int) -> dict[str, Any]:
    """LiteLLM's Router versus a bare SDK call against this stub, replaying the request body our turn
    sent, in ``python`` (the peer virtualenv) -- see bench/peer_litellm.py."""
    import subprocess
    import tempfile

    body = stub.requests("openai")[-1].body
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump({"model": body["model"], "messages": body["messages"]}, fh)
    try:
        out = subprocess.run(
            [python, str(Path(__file__).with_name("peer_litellm.py")), "--base-url", stub.openai_base_url,
             "--body", fh.name, "--pairs", str(pairs), "--warmup", str(warmup)],
            check=True, capture_output=True, text=True, timeout=900,
        )
    finally:
        os.unlink(fh.name)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def concurrent_turns(n: int) -> tuple[int, int, int, float]:
    """``n`` users send one turn each, all at once on ``n`` threads. Returns
    (errors, rows missing or not ok, rows stuck pending, wall seconds)."""
    from sqlmodel import col, select

    from core.chat import run_turn
    from core.db import system_session
    from models import AgentRun

    tag = uuid.uuid4().hex[:8]
    users = [make_user(f"concurrent-{tag}-{i}@example.com") for i in range(n)]
    convs = [make_conversation(u) for u in users]
    messages = [f"concurrent {tag} message {i}" for i in range(n)]
    barrier = threading.Barrier(n)
    errors: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            turn = run_turn(user_id=users[i], conversation_id=convs[i], text=messages[i])
            for _ in turn:
                pass
            if turn.result.status != "ok":
                raise RuntimeError(f"{turn.result.status}/{turn.result.error_code}")
        except Exception as exc:
            with lock:
                errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t0
    with system_session() as s:
        rows = s.exec(select(AgentRun.user_message, AgentRun.status).where(col(AgentRun.user_id).in_(users))).all()
    by_msg = {m: st for m, st in rows}
    lost = sum(1 for m in messages if by_msg.get(m) != "ok")
    pending = sum(1 for st in by_msg.values() if st == "pending")
    for e in errors[:5]:
        print(f"  concurrent error: {e}")
    return len(errors), lost, pending, wall


def profile_turns(user_id: uuid.UUID, conversation_for: Callable[[int], uuid.UUID], n: int, label: str) -> None:
    """cProfile over ``n`` turns: where run_turn's own time goes (the stub runs in other threads)."""
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        turn_call(user_id, conversation_for(i), QUESTION.format(i=f"p{i}"))
    prof.disable()
    out = io.StringIO()
    st = pstats.Stats(prof, stream=out)
    st.sort_stats("cumulative").print_stats(45)
    print(f"\n[profile: {label}, {n} turns, cumulative, top 45]")
    lines = out.getvalue().splitlines()
    print("\n".join(line for line in lines if line.strip())[:12000])
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
    print(f"\n[profile: {label}, own time (tottime), top 25]")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:8000])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50 pairs per case instead of 200")
    ap.add_argument("--turns", type=int, default=None, help="pairs per case")
    ap.add_argument("--concurrent", type=int, default=50)
    ap.add_argument("--redis", default=None, help="put the rate limiter in this Redis (redis://...)")
    ap.add_argument("--profile", action="store_true", help="also cProfile run_turn (not timed)")
    ap.add_argument("--peer", default=None, metavar="PYTHON",
                    help="also time LiteLLM's Router against the same stub, in the run (bench/peer_litellm.py "
                         "run by this interpreter of the peer virtualenv, e.g. .peer-venv/bin/python)")
    args = ap.parse_args()
    pairs = args.turns or (50 if args.quick else 200)
    warmup = 10 if args.quick else 20
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from core import db as core_db
    from tests.stubs.provider_server import ProviderStubServer

    print(f"machine: {machine()}")
    print(f"load average at start: {loadavg()}")
    name, url = create_database("advisor_bench_turn")
    try:
        with ProviderStubServer() as stub:
            # The stub's listen backlog is socketserver's default of 5: with 50 simultaneous connects,
            # most would wait for a SYN retransmit -- an artefact of the stub, not of run_turn.
            stub._httpd.socket.listen(128)
            stub.set_reply("*", stub_reply())
            prefix = f"advisor-bench-{uuid.uuid4().hex[:8]}" if args.redis else None
            configure_app(database_url=url, openai_base_url=stub.openai_base_url, redis_url=args.redis,
                          key_prefix=prefix)
            core_db.migrate(url)
            client = openai.OpenAI(base_url=stub.openai_base_url, api_key=FAKE_OPENAI_KEY, max_retries=0)

            user_id = make_user("bench-turn@example.com")
            fresh = [make_conversation(user_id) for _ in range(pairs + warmup)]
            heavy_conv = make_conversation(user_id)
            bulk_insert_runs(user_id, heavy_conv, HISTORY_RUNS)
            with core_db.get_engine().begin() as conn:  # planner statistics, as autovacuum keeps them live
                conn.execute(text("ANALYZE"))
            print(f"pairs per case: {pairs} (+{warmup} warm-up); reply: {REPLY_WORDS} chunks; "
                  f"limiter: {'redis' if args.redis else 'memory'}")

            one = run_case("1-message conversation (fresh conversation per turn)", stub=stub, client=client,
                           user_id=user_id, conversation_for=lambda i: fresh[i], pairs=pairs, warmup=warmup)
            one.report()
            peer = run_peer(args.peer, stub, pairs, warmup) if args.peer else None
            heavy = run_case(f"{HISTORY_RUNS}-message conversation", stub=stub, client=client, user_id=user_id,
                             conversation_for=lambda i: heavy_conv, pairs=pairs, warmup=warmup)
            heavy.report()
            print(f"\nload average after the timed pairs: {loadavg()}")

            errors, lost, pending, wall = concurrent_turns(args.concurrent)
            print(f"\n[concurrency] {args.concurrent} turns on {args.concurrent} threads in {wall:.2f} s: "
                  f"{errors} errors, {lost} rows missing/not ok, {pending} pending")
            if args.profile:
                extra = [make_conversation(user_id) for _ in range(100)]
                profile_turns(user_id, lambda i: extra[i], 100, "1-message")
                profile_turns(user_id, lambda i: heavy_conv, 100, f"{HISTORY_RUNS}-message")
            client.close()

        a1_ttft, a1_total = pct(one.added("ttft_ms"), 50), pct(one.added("total_ms"), 50)
        ah_ttft, ah_total = pct(heavy.added("ttft_ms"), 50), pct(heavy.added("total_ms"), 50)
        # how the time our layer adds grows with the conversation (added time below zero: no growth)
        growth_ttft = ah_ttft / a1_ttft if a1_ttft > 0 else (1.0 if ah_ttft <= 0 else float("inf"))
        print(f"\nadded p50 (per-pair differences): 1-message TTFT {a1_ttft:.3f} ms total {a1_total:.3f} ms; "
              f"{HISTORY_RUNS}-message TTFT {ah_ttft:.3f} ms total {ah_total:.3f} ms")

        def ratio(case: CaseResult, what: str) -> float:
            return pct(case.series("turn", what), 50) / pct(case.series("bare", what), 50)

        # convention (bench/README.md): "ratio <goal name>: <x>" is the baseline ratio of that goal
        print(f"ratio turn_added_ttft_p50: {ratio(one, 'ttft_ms'):.3f}x (run_turn TTFT p50 / bare SDK TTFT p50)")
        print(f"ratio turn_500msg_ttft_vs_bare: {ratio(heavy, 'ttft_ms'):.3f}x")
        print(f"figure turn_added_total_p50: {a1_total:.3f} ms")
        print(f"figure turn_added_ttft_p95: {pct(one.added('ttft_ms'), 95):.3f} ms")
        print(f"figure turn_500msg_added_ttft_p50: {ah_ttft:.3f} ms")
        print(f"figure turn_500msg_added_total_p50: {ah_total:.3f} ms")
        print(f"load average at end: {loadavg()}")
        print(json.dumps({"bench": "turn_overhead", "pairs": pairs, "added_ttft_p50_ms": round(a1_ttft, 3),
                          "added_total_p50_ms": round(a1_total, 3), "added_ttft_500_p50_ms": round(ah_ttft, 3),
                          "added_total_500_p50_ms": round(ah_total, 3), "loadavg": loadavg()}))
        if peer is not None:
            print(f"\n[peer] {peer['peer']} (openai {peer['openai']}) against the same stub, {peer['pairs']} pairs "
                  f"after the 1-message case: LiteLLM adds TTFT p50 {peer['added_ttft_p50_ms']:.3f} ms, "
                  f"total p50 {peer['added_total_p50_ms']:.3f} ms (without a durable write)")
            print(f"figure turn_litellm_added_ttft_p50: {peer['added_ttft_p50_ms']:.3f} ms")
            print(f"figure turn_litellm_added_total_p50: {peer['added_total_p50_ms']:.3f} ms")
        goal("turn_added_ttft_p50", a1_ttft, "ms", "<=", 10.0)
        goal("turn_added_ttft_500msg_vs_1msg", growth_ttft, "x", "<=", 2.0)
        goal("turn_concurrent_errors", errors, "count", "<=", 0)
        goal("turn_concurrent_lost_rows", lost, "count", "<=", 0)
    finally:
        core_db.dispose_engines()
        drop_database(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
