"""Analytics at scale: one page load for one user and for the admin view on 1,000,000 runs.

    python -m bench.analytics            # 1,000 users, 1,000,000 runs over 90 days
    python -m bench.analytics --quick    # 100,000 runs
    python -m bench.analytics --keep     # keep the database advisor_bench_analytics afterwards

Creates its own PostgreSQL database ``advisor_bench_analytics``, migrates it, seeds it with
``bench.seed_runs`` (COPY, in a child process so the seeding's memory does not count against this
one), runs ``VACUUM (ANALYZE)``, then times the queries of one analytics page load (the default
view: the last 30 days by day) — for the busiest non-admin user (``load_dashboard`` +
``filter_options`` + ``recent_runs`` + ``core.limits.usage_summary``) and for the admin view
(``load_admin_dashboard``: the four SECURITY DEFINER functions) — with ``--reps`` repetitions
after two warm-up runs, and prints p50/p95, the peak RSS of this process, and an
``EXPLAIN (ANALYZE, BUFFERS)`` summary of the main user query and of the admin scan.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy import text

from bench.common import PG_ADMIN_DSN, goal, machine, pct

DB_NAME = "advisor_bench_analytics"
ROOT = Path(__file__).resolve().parent.parent


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _url() -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{DB_NAME}"


def _time(fn: Callable[[], object], reps: int) -> list[float]:
    for _ in range(2):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _explain(session: object, sql: str, params: dict[str, object], label: str) -> None:
    from core.analytics import _text

    stmt = _text("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
    lines = [r[0] for r in session.execute(stmt, params)]  # type: ignore[attr-defined]
    print(f"--- EXPLAIN (ANALYZE, BUFFERS): {label}")
    for line in lines:
        if any(
            k in line
            for k in (
                "Scan",
                "Aggregate",
                "Sort",
                "Buffers",
                "Execution Time",
                "Planning Time",
                "Index Cond",
                "Filter:",
                "Rows Removed",
            )
        ):
            print("   " + line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="analytics at scale")
    parser.add_argument("--quick", action="store_true", help="100,000 runs instead of 1,000,000")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a database kept by --keep (no seeding)")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    runs = args.runs or (100_000 if args.quick else 1_000_000)
    url = _url()
    print(f"machine: {machine()}")
    os.environ["ADVISOR_DATABASE_URL"] = url
    from core import db as core_db
    from core.analytics import (
        Filters,
        _aggregate_sql,
        _params,
        _where,
        filter_options,
        load_admin_dashboard,
        load_dashboard,
        recent_runs,
    )
    from core.limits import usage_summary
    from core.settings import reset_settings_cache

    reset_settings_cache()
    try:
        if not args.reuse:
            _admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            _admin(f'CREATE DATABASE "{DB_NAME}"')
            core_db.migrate(url)
            t0 = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.seed_runs",
                    "--database-url",
                    url,
                    "--users",
                    str(args.users),
                    "--runs",
                    str(runs),
                    "--seed",
                    str(args.seed),
                ],
                cwd=ROOT,
                check=True,
            )
            print(f"seeded {runs:,} runs over {args.users:,} users in {time.perf_counter() - t0:.1f} s")
            t0 = time.perf_counter()
            dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{DB_NAME}"
            with psycopg.connect(dsn, autocommit=True) as pg:
                pg.execute("VACUUM (ANALYZE) users, conversations, agent_runs")
                row = pg.execute("SELECT pg_size_pretty(pg_total_relation_size('agent_runs'))").fetchone()
            took = time.perf_counter() - t0
            print(f"VACUUM (ANALYZE) in {took:.1f} s; agent_runs total size {row[0] if row else '?'}")
        engine = core_db.get_engine()
        with engine.connect() as conn:
            admin_id, user_id, user_runs = conn.execute(
                text(
                    "SELECT (SELECT id FROM users WHERE is_admin ORDER BY email LIMIT 1), "
                    "r.user_id, count(*) "
                    "FROM agent_runs r JOIN users u ON u.id = r.user_id WHERE NOT u.is_admin "
                    "GROUP BY r.user_id ORDER BY count(*) DESC LIMIT 1"
                )
            ).one()
        assert isinstance(user_id, uuid.UUID) and isinstance(admin_id, uuid.UUID)
        filters = Filters.last_days(30)
        print(f"user: the busiest non-admin ({user_runs:,} runs in total); view: last 30 days by day")

        def user_page() -> None:
            filter_options(user_id=user_id)
            usage_summary(user_id=user_id)
            load_dashboard(user_id=user_id, filters=filters, granularity="day")
            recent_runs(user_id=user_id, filters=filters, page=0, page_size=25)

        def admin_page() -> None:
            load_admin_dashboard(admin_id=admin_id, filters=filters, granularity="day")

        dash = load_dashboard(user_id=user_id, filters=filters)
        admin = load_admin_dashboard(admin_id=admin_id, filters=filters)
        print(
            f"user view: {dash.kpis.current.runs:,} runs in range; "
            f"admin view: {admin.kpis.current.runs:,} runs in range, {len(admin.by_user):,} users, "
            f"{len(admin.by_user_model):,} user x model rows"
        )
        user_ms = _time(user_page, args.reps)
        admin_ms = _time(admin_page, args.reps)
        for label, ms in (("user page load ", user_ms), ("admin page load", admin_ms)):
            print(f"{label} ({args.reps} reps): p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms")

        with core_db.user_session(user_id) as session:
            sql = _aggregate_sql(
                "postgresql",
                keys=[("CASE WHEN r.created_at >= :start THEN 'current' ELSE 'previous' END", "period")],
                where=_where(filters, scoped=True, lower="prev_start"),
                percentiles=True,
                order_by="period",
            )
            _explain(
                session, sql, _params(filters, user_id), "user KPIs, both periods (as advisor_app, RLS on)"
            )
        with core_db.system_session() as session:
            sql = _aggregate_sql(
                "postgresql",
                keys=[("CASE WHEN r.created_at >= :start THEN 'current' ELSE 'previous' END", "period")],
                where=_where(filters, scoped=False, lower="prev_start"),
                percentiles=True,
                order_by="period",
            )
            _explain(
                session, sql, _params(filters, None), "admin KPIs scan (same SQL as app.analytics_admin_kpis)"
            )

        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {rss_mb:.1f} MB")
        goal("analytics_user_p50", pct(user_ms, 50), "ms", "<=", 300)
        goal("analytics_admin_p50", pct(admin_ms, 50), "ms", "<=", 1000)
        goal("analytics_rss", rss_mb, "MB", "<", 200)
    finally:
        core_db.dispose_engines()
        if not args.keep:
            _admin(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
