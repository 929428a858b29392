"""Load: N concurrent simulated users calling ``run_turn`` against PostgreSQL and the loopback stub,
with deterministic fault injection on the primary provider; optionally through several processes
sharing PostgreSQL and Redis (what several Streamlit replicas behind a load balancer do).

    python -m bench.load [--quick] [--users 50] [--turns 20] [--replicas 1|2] [--fault-rate 0.05] [--seed 7]

- The stub runs in its own process (``tests.stubs.provider_server``, listen backlog 128); primary
  ``openai`` and secondary ``anthropic`` both point at it.
- Users are split across ``--replicas`` worker processes (``python -m bench.load --worker``); each
  worker runs one thread per user, each thread sends its user's turns one after another.
- Faults: for every (user, turn) a ``random.Random(f"{seed}:{user}")`` draw decides whether the
  turn is preceded by a one-shot fault queued on the stub for ``openai`` (``server_error``,
  ``rate_limited`` or ``unavailable``, also drawn). The schedule and the injected count are
  deterministic; which concurrent request consumes a queued fault is not, but every one is
  consumed by the next openai request, so the counts must match exactly. The breaker threshold is
  set high (100) so that a run of faults cannot open it and send un-faulted turns to the fallback.
- Checks (in the parent, on PostgreSQL as the admin role): every sent message is in
  ``agent_runs`` (0 lost), no row left ``pending``, every row ``ok``, no duplicates, and
  ``provider='anthropic' AND fallback_from='openai'`` count == injected count.
- Overhead per turn = what ``run_turn`` adds outside the provider stream: the time until it
  returns the stream (validate, quota + rate limit, store the message) plus the time from the last
  delta to the end of iteration (the row's last write, made in the stream's ``finally``). Also
  reported: TTFT and turn latency.
- ``--replicas 2``: the rate limiter lives in Redis (``--redis``, default
  ``redis://127.0.0.1:6379/0``, keys under a unique prefix, deleted at the end). Probes:
  (1) ``chat_turns_per_minute`` = 7 and every process sends 10 turns for one probe user, the
  attempts alternating between the processes every 0.25 s (r0, r1, r0, ...; 20 in 5 s, well inside
  the one-minute window): the processes together must admit exactly 7 and refuse the other 13;
  (2) a user with a ``quota_tokens_per_day`` override is filled up by one process until refused,
  then another process must be refused too.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PG_ADMIN_DSN, create_database, drop_database, goal, machine, pct

ROOT = Path(__file__).resolve().parent.parent
FAULT_KINDS = ("server_error", "rate_limited", "unavailable")
REPLY = {"text": " ".join(["advice"] * 60), "input_tokens": 400, "output_tokens": 60}
RATE_PROBE_LIMIT = 7
RATE_PROBE_ATTEMPTS_PER_PROCESS = 10
QUOTA_PROBE_TOKENS = 1000  # each stub turn costs 400 + 60 tokens: 3 turns admitted, the 4th refused


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


# ------------------------------------------------------------------------------------------------
# worker process
# ------------------------------------------------------------------------------------------------
def _queue_fault(stub_url: str, kind: str) -> None:
    body = json.dumps({"api": "openai", "fault": {"kind": kind}, "queue": True}).encode()
    req = urllib.request.Request(f"{stub_url}/_control/fault", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def fault_plan(seed: int, user_index: int, turns: int, rate: float) -> list[str | None]:
    rnd = random.Random(f"{seed}:{user_index}")
    return [rnd.choice(FAULT_KINDS) if rnd.random() < rate else None for _ in range(turns)]


def message_text(tag: str, user_index: int, turn: int) -> str:
    return f"load {tag} user {user_index} turn {turn}: how should we staff the on-call rotation?"


def _one_turn(user_id: uuid.UUID, conv_id: uuid.UUID, text: str) -> dict[str, Any]:
    from core.chat import TurnRejected, run_turn

    t0 = time.perf_counter()
    try:
        turn = run_turn(user_id=user_id, conversation_id=conv_id, text=text)
    except TurnRejected as exc:
        return {"rejected": exc.reason}
    t_accept = time.perf_counter()
    ttft = t_last = None
    for _ in turn:
        t_last = time.perf_counter()
        if ttft is None:
            ttft = t_last
    t_end = time.perf_counter()
    turn.close()  # as the page does
    r = turn.result
    return {
        "status": r.status, "provider": r.provider, "fallback_from": list(r.fallback_from),
        "error_code": r.error_code,
        "accept_ms": (t_accept - t0) * 1000,
        "finish_ms": (t_end - (t_last or t_accept)) * 1000,
        "ttft_ms": ((ttft or t_end) - t0) * 1000,
        "total_ms": (t_end - t0) * 1000,
    }


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    from bench.turn_overhead import configure_app

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    configure_app(database_url=spec["database_url"], openai_base_url=spec["stub_url"] + "/v1",
                  anthropic_base_url=spec["stub_url"], redis_url=spec.get("redis_url"),
                  key_prefix=spec.get("key_prefix"), extra=spec.get("extra_env"))
    # warm up what a running replica has warm after its first request: atoms, router, pools
    from sqlalchemy import text as sql_text

    from core.atoms import app_atoms
    from core.db import get_engine
    from core.providers.router import build_router
    from core.rate_limits import limiter
    from core.settings import get_settings

    app_atoms()
    build_router(get_settings())
    limiter().storage.check()
    conns = [get_engine().connect() for _ in range(min(10, len(spec["users"]) * spec.get("threads_per_user", 1)))]
    for c in conns:
        c.execute(sql_text("SELECT 1"))
        c.close()
    phase = spec["phase"]
    users = [(int(i), uuid.UUID(u), uuid.UUID(c)) for i, u, c in spec["users"]]
    results: list[dict[str, Any]] = []
    injected = 0
    lock = threading.Lock()
    errors: list[str] = []

    def run_user(index: int, user_id: uuid.UUID, conv_id: uuid.UUID, copy: int = 0) -> None:
        nonlocal injected
        if phase == "rate_probe":  # attempts alternate between the processes: r0, r1, r0, r1, ...
            slot = copy * spec["replicas"] + spec["replica"]
            time.sleep(max(0.0, spec["start_at"] + slot * spec["stagger_s"] - time.time()))
        plan = fault_plan(spec["seed"], index, spec["turns"], spec["fault_rate"]) if phase == "load" else []
        for t in range(spec["turns"]):
            try:
                if plan and plan[t] is not None:
                    _queue_fault(spec["stub_url"], plan[t])  # type: ignore[arg-type]
                    with lock:
                        injected += 1
                res = _one_turn(user_id, conv_id, message_text(spec["tag"], index, t))
            except Exception as exc:
                res = {"exception": f"{type(exc).__name__}: {exc}"}
                with lock:
                    errors.append(res["exception"])
            with lock:
                results.append(res)
            if phase == "quota_fill" and "rejected" in res:
                break

    # handshake: tell the parent we are warm, wait for the common start time
    print("READY", flush=True)
    go = sys.stdin.readline().split()
    spec["start_at"] = float(go[1]) if len(go) == 2 and go[0] == "GO" else time.time()
    time.sleep(max(0.0, spec["start_at"] - time.time()))
    t0 = time.time()
    if phase in ("load", "rate_probe"):
        threads = []
        for index, user_id, conv_id in users:
            copies = spec.get("threads_per_user", 1)
            for copy in range(copies):
                threads.append(threading.Thread(target=run_user, args=(index, user_id, conv_id, copy)))
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    else:  # quota_fill / quota_check: one user, turns one after another
        for index, user_id, conv_id in users:
            run_user(index, user_id, conv_id)
    t1 = time.time()
    from core.db import dispose_engines

    dispose_engines()
    return {"pid": os.getpid(), "phase": phase, "start": t0, "end": t1, "injected": injected,
            "results": results, "errors": errors[:10]}


# ------------------------------------------------------------------------------------------------
# parent
# ------------------------------------------------------------------------------------------------
# ``python -m tests.stubs.provider_server`` with a listen backlog of 128 instead of socketserver's 5:
# with 50 users connecting at once, a backlog of 5 makes most connects wait for SYN retransmits
# (1 s, 3 s, ...) -- an artefact of the stub that a real provider does not have.
STUB_LAUNCHER = """
from tests.stubs.provider_server import ProviderStubServer
server = ProviderStubServer("127.0.0.1", 0)
server._httpd.socket.listen(128)
print(f"provider stub listening on {server.url} ", flush=True)
server.serve_forever()
"""


class Stub:
    """The provider stub in its own process (so it does not share this process's GIL)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", STUB_LAUNCHER], cwd=ROOT, stdout=subprocess.PIPE,
                                     text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on " not in line:
            self.stop()
            raise RuntimeError(f"stub did not start: {line!r}")
        self.url = line.split("listening on ", 1)[1].split()[0]
        self._post("/_control/reply", {"api": "*", "reply": REPLY})

    def _post(self, path: str, payload: dict[str, Any]) -> None:
        req = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_workers(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    procs = []
    files = []
    for spec in specs:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(spec, f)
        files.append(f.name)
        procs.append(subprocess.Popen([sys.executable, "-m", "bench.load", "--worker", f.name], cwd=ROOT,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
    for p in procs:  # every worker imports, connects and warms up first
        assert p.stdout is not None
        line = p.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"worker did not get ready: {line!r}")
    start_at = time.time() + 0.5  # then all start together
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(f"GO {start_at}\n")
        p.stdin.flush()
    out = []
    for p, name in zip(procs, files, strict=True):
        stdout, _ = p.communicate(timeout=1800)
        os.unlink(name)
        lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
        if p.returncode != 0 or not lines:
            raise RuntimeError(f"worker failed (exit {p.returncode}): {stdout[-2000:]}")
        out.append(json.loads(lines[-1][len("RESULT "):]))
    return out


def _admin_query(dbname: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    import psycopg

    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + "/" + dbname
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def _setup_users(database_url: str, n: int, tag: str, *, quota: int | None = None) -> list[tuple[int, str, str]]:
    from bench.turn_overhead import make_conversation, make_user

    out = []
    for i in range(n):
        uid = make_user(f"load-{tag}-{i}@example.com", quota_tokens_per_day=quota)
        out.append((i, str(uid), str(make_conversation(uid))))
    return out


def _clear_redis_prefix(redis_url: str, prefix: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    return len(keys)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="10 users x 5 turns")
    ap.add_argument("--users", type=int, default=None)
    ap.add_argument("--turns", type=int, default=None)
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--fault-rate", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0",
                    help="Redis shared by the replicas (used when --replicas > 1)")
    args = ap.parse_args()
    if args.worker:
        spec = json.loads(Path(args.worker).read_text())
        print("RESULT " + json.dumps(worker(spec)), flush=True)
        return 0

    users_n = args.users or (10 if args.quick else 50)
    turns = args.turns or (5 if args.quick else 20)
    replicas = max(1, args.replicas)
    tag = uuid.uuid4().hex[:8]
    redis_url = args.redis if replicas > 1 else None
    key_prefix = f"advisor-bench-load-{tag}"
    print(f"machine: {machine()}")
    print(f"load average at start: {loadavg()}")
    print(f"{users_n} users x {turns} turns through {replicas} process(es); fault rate {args.fault_rate:.0%} "
          f"(seed {args.seed}); limiter: {'redis ' + redis_url + ' prefix ' + key_prefix if redis_url else 'memory'}")

    from bench.turn_overhead import configure_app
    from core import db as core_db

    name, url = create_database("advisor_bench_load")
    stub = Stub()
    try:
        configure_app(database_url=url, openai_base_url=stub.url + "/v1", anthropic_base_url=stub.url)
        core_db.migrate(url)  # the release step, once
        base = {"database_url": url, "stub_url": stub.url, "redis_url": redis_url, "key_prefix": key_prefix,
                "seed": args.seed, "fault_rate": args.fault_rate, "tag": tag}

        # ---------------------------------------------------------------- load phase
        users = _setup_users(url, users_n, tag)
        specs = [{**base, "phase": "load", "users": users[r::replicas], "turns": turns}
                 for r in range(replicas)]
        outs = run_workers(specs)
        wall = max(o["end"] for o in outs) - min(o["start"] for o in outs)
        results = [r for o in outs for r in o["results"]]
        injected = sum(o["injected"] for o in outs)
        expected_injected = sum(1 for i in range(users_n)
                                for k in fault_plan(args.seed, i, turns, args.fault_rate) if k)
        done = [r for r in results if "status" in r]
        errors = [r for r in results if r.get("status") != "ok"]
        overhead = [r["accept_ms"] + r["finish_ms"] for r in done]
        print(f"\n[load] {len(results)} turns in {wall:.2f} s by pids {[o['pid'] for o in outs]}; "
              f"load average now {loadavg()}")
        print(f"  throughput: {len(done) / wall:.1f} turns/s")
        print(f"  overhead (accept + finish) p50 {pct(overhead, 50):.2f} ms  p95 {pct(overhead, 95):.2f} ms")
        for key in ("accept_ms", "finish_ms", "ttft_ms", "total_ms"):
            vals = [r[key] for r in done]
            print(f"  {key:<10} p50 {pct(vals, 50):8.2f} ms  p95 {pct(vals, 95):8.2f} ms")
        print(f"  errors (turn not ok, rejected or raised): {len(errors)}")
        for o in outs:
            for e in o["errors"][:3]:
                print(f"    {e}")

        sent = {message_text(tag, i, t) for i in range(users_n) for t in range(turns)}
        rows = _admin_query(name, "SELECT user_message, status, provider, fallback_from FROM agent_runs "
                                  "WHERE user_message LIKE %s", (f"load {tag} %",))
        stored = [r[0] for r in rows]
        lost = len(sent - set(stored))
        duplicates = len(stored) - len(set(stored))
        pending = _admin_query(name, "SELECT count(*) FROM agent_runs WHERE status = 'pending'")[0][0]
        not_ok = sum(1 for r in rows if r[1] != "ok")
        recovered = sum(1 for r in rows if r[2] == "anthropic" and r[3] == "openai")
        other_fallbacks = sum(1 for r in rows if r[3] and not (r[2] == "anthropic" and r[3] == "openai"))
        print(f"  sent {len(sent)}, stored {len(stored)} (lost {lost}, duplicates {duplicates}, not ok {not_ok}), "
              f"pending {pending}")
        print(f"  faults injected {injected} (schedule from the seed: {expected_injected}); rows answered by "
              f"anthropic after openai failed: {recovered}; other fallbacks: {other_fallbacks}")
        unrecovered = max(0, injected - recovered) + max(0, recovered - injected) + other_fallbacks

        # ---------------------------------------------------------------- cross-process probes
        admitted = None
        quota_ok = None
        if replicas > 1:
            probe = _setup_users(url, 1, tag + "-rate")
            extra = {"CHAT_TURNS_PER_MINUTE": str(RATE_PROBE_LIMIT)}
            specs = [{**base, "tag": tag + "-rate", "phase": "rate_probe", "users": probe, "turns": 1,
                      "threads_per_user": RATE_PROBE_ATTEMPTS_PER_PROCESS, "extra_env": extra,
                      "replica": r, "replicas": replicas, "stagger_s": 0.25}
                     for r in range(replicas)]
            outs = run_workers(specs)
            per_proc = [sum(1 for r in o["results"] if "status" in r) for o in outs]
            refused = [sum(1 for r in o["results"] if r.get("rejected") == "chat_turns") for o in outs]
            admitted = sum(per_proc)

            print(f"\n[rate-limit probe] chat_turns_per_minute={RATE_PROBE_LIMIT}; {replicas} processes x "
                  f"{RATE_PROBE_ATTEMPTS_PER_PROCESS} turns for one user (alternating every 0.25 s): "
                  f"admitted per process {per_proc} (total {admitted}), refused per process {refused}")

            qusers = _setup_users(url, 1, tag + "-quota", quota=QUOTA_PROBE_TOKENS)
            fill = run_workers([{**base, "tag": tag + "-quota", "phase": "quota_fill", "users": qusers,
                                 "turns": 20}])[0]
            check = run_workers([{**base, "tag": tag + "-quota2", "phase": "quota_check", "users": qusers,
                                  "turns": 2}])[0]
            filled = sum(1 for r in fill["results"] if "status" in r)
            fill_refused = [r.get("rejected") for r in fill["results"] if "rejected" in r]
            check_res = [r.get("rejected") or r.get("status") for r in check["results"]]
            tokens = _admin_query(name, "SELECT coalesce(sum(input_tokens + output_tokens), 0) FROM agent_runs "
                                        "WHERE user_id = %s", (uuid.UUID(qusers[0][1]),))[0][0]
            quota_ok = fill_refused == ["tokens_per_day"] and all(c == "tokens_per_day" for c in check_res)
            print(f"[quota probe] quota_tokens_per_day={QUOTA_PROBE_TOKENS} override: process {fill['pid']} "
                  f"admitted {filled} turns ({tokens} tokens) then was refused {fill_refused}; process "
                  f"{check['pid']} then got {check_res}")
            removed = _clear_redis_prefix(redis_url, key_prefix) if redis_url else 0
            print(f"[redis] removed {removed} key(s) under {key_prefix}*")

        print(f"\nfigure load_throughput: {len(done) / wall:.2f} turns/s")
        print(f"figure load_overhead_p50: {pct(overhead, 50):.2f} ms")
        print(f"figure load_overhead_p95: {pct(overhead, 95):.2f} ms")
        print(json.dumps({"bench": "load", "replicas": replicas, "users": users_n, "turns": turns,
                          "throughput": round(len(done) / wall, 2), "overhead_p50_ms": round(pct(overhead, 50), 2),
                          "overhead_p95_ms": round(pct(overhead, 95), 2), "errors": len(errors),
                          "injected": injected, "recovered": recovered, "loadavg": loadavg()}))
        goal("load_lost_messages", lost + duplicates, "count", "<=", 0)
        goal("load_stuck_pending", pending, "count", "<=", 0)
        goal("load_unrecovered_faults", unrecovered, "count", "<=", 0)
        goal("load_errors", len(errors), "count", "<=", 0)
        if admitted is not None:
            goal("load_replicas_rate_limit_excess", abs(admitted - RATE_PROBE_LIMIT), "count", "<=", 0)
            goal("load_replicas_quota_leaks", 0 if quota_ok else 1, "count", "<=", 0)
    finally:
        stub.stop()
        core_db.dispose_engines()
        drop_database(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
