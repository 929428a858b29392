"""Cost of ``user_session`` (role switch + app.user_id, RLS on) + one indexed select on PostgreSQL,
against the same select in a plain transaction on the same pool, interleaved in one run.

    python -m bench.db_overhead [--quick] [--iterations N]
"""

from __future__ import annotations

import argparse
import time
import uuid

from sqlalchemy import text
from sqlmodel import Session

from bench.common import create_database, drop_database, goal, machine, pct
from core import db as core_db
from models import AgentRun, Conversation, User

QUERY = text(
    "SELECT id, status, created_at FROM agent_runs WHERE user_id = :uid ORDER BY created_at DESC LIMIT 20"
)


def seed(url: str, users: int, runs_per_user: int) -> list[uuid.UUID]:
    engine = core_db.engine_for(url)
    ids: list[uuid.UUID] = []
    with Session(engine) as s, s.begin():
        for u in range(users):
            user = User(email=f"bench{u}@example.com")
            s.add(user)
            s.flush()
            conv = Conversation(user_id=user.id, title="bench")
            s.add(conv)
            s.flush()
            ids.append(user.id)
            s.add_all(
                AgentRun(user_id=user.id, conversation_id=conv.id, user_message=f"q{i}", output="a", status="ok")
                for i in range(runs_per_user)
            )
    with engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    return ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--iterations", type=int, default=None)
    args = ap.parse_args()
    iterations = args.iterations or (1000 if args.quick else 5000)
    name, url = create_database("advisor_bench_db")
    try:
        core_db.migrate(url)
        users = seed(url, 50, 40 if args.quick else 200)
        engine = core_db.engine_for(url, pool_size=1)
        plain: list[float] = []
        scoped: list[float] = []
        for i in range(iterations + 100):
            uid = users[i % len(users)]
            t0 = time.perf_counter()
            with Session(engine) as s, s.begin():
                rows_plain = s.execute(QUERY, {"uid": uid}).all()
            t1 = time.perf_counter()
            with core_db.user_session(uid, engine=engine) as s:
                rows_rls = s.execute(QUERY, {"uid": uid}).all()
            t2 = time.perf_counter()
            assert len(rows_plain) == len(rows_rls) == 20
            if i >= 100:  # warm-up
                plain.append((t1 - t0) * 1000)
                scoped.append((t2 - t1) * 1000)
        added = [s - p for s, p in zip(scoped, plain, strict=True)]
        print(f"machine: {machine()}")
        print(f"iterations: {iterations}")
        print(f"plain transaction + select : p50 {pct(plain, 50):.3f} ms  p95 {pct(plain, 95):.3f} ms")
        print(f"user_session + select (RLS): p50 {pct(scoped, 50):.3f} ms  p95 {pct(scoped, 95):.3f} ms")
        print(f"ratio p50: {pct(scoped, 50) / pct(plain, 50):.2f}x")
        goal("db_overhead_added_p50", pct(added, 50), "ms", "<=", 0.3)
    finally:
        core_db.dispose_engines()
        drop_database(name)


if __name__ == "__main__":
    main()
