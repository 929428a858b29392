"""Analytics at scale: one page load for one user and for the admin view on 1,000,000 runs.

    python -m bench.analytics            # 1,000 users, 1,000,000 runs over 90 days
    python -m bench.analytics --quick    # 100,000 runs
    python -m bench.analytics --keep     # keep the database advisor_bench_analytics afterwards
    python -m bench.analytics --reuse    # time a kept database again (migrated to head, not reseeded)
    python -m bench.analytics --db-name advisor_bench_analytics_mine --keep   # a private database

Creates its own PostgreSQL database ``advisor_bench_analytics``, migrates it, seeds it with
``bench.seed_runs`` (COPY, in a child process so the seeding's memory does not count against this
one), runs ``VACUUM (ANALYZE)``, then times the queries of one analytics page load (the default
view: the last 30 days by day) — for the busiest non-admin user (``load_dashboard``, whose statement
includes the prompt versions, + ``filter_options`` + ``recent_runs`` + ``core.quotas.usage_summary``)
and for the admin view (``load_admin_dashboard``: the SECURITY DEFINER function
``app.analytics_admin_dashboard``, prompt versions across all users included) — and the prompt preview's
figures (``prompt_versions`` of the user, all time) — with
``--reps`` repetitions after two warm-up runs, and prints p50/p95, the load average, the peak RSS
of this process, and an ``EXPLAIN (ANALYZE, BUFFERS)`` summary of the main user query and of the
admin function's statement (through auto_explain, so with the function's own settings).
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
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import text

from bench.common import PG_ADMIN_DSN, goal, machine, pct

DB_NAME = "advisor_bench_analytics"
ROOT = Path(__file__).resolve().parent.parent


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _url(db_name: str = DB_NAME) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{db_name}"


def _time(fn: Callable[[], object], reps: int) -> list[float]:
    for _ in range(2):
        fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _explain(session: object, statement: object, label: str) -> None:
    from sqlalchemy.dialects import postgresql

    compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})  # type: ignore[attr-defined]
    lines = [r[0] for r in session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))]  # type: ignore[attr-defined]
    print(f"--- EXPLAIN (ANALYZE, BUFFERS): {label}")
    for line in lines:
        if any(k in line for k in _PLAN_KEYS):
            print("   " + line)


_PLAN_KEYS = (
    "Scan", "Aggregate", "Sort", "Buffers", "Execution Time", "Planning Time", "Index Cond", "Filter:",
    "Rows Removed", "Gather", "Append", "Workers", "Duration", "Group Key", "Hash Key",
)  # fmt: skip


def _explain_admin(db_name: str, admin_id: uuid.UUID, filters: object) -> None:
    """The plan of the statement inside ``app.analytics_admin_dashboard``, as it really runs (with the
    function's own settings): auto_explain, nested statements, sent back as NOTICEs."""
    from core.analytics.admin import function_arguments

    params = function_arguments(filters, "day")  # type: ignore[arg-type]
    notices: list[str] = []
    dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{db_name}"
    with psycopg.connect(dsn, autocommit=True) as pg:
        pg.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        pg.execute("LOAD 'auto_explain'")
        for name, value in (
            ("log_min_duration", "0"), ("log_analyze", "on"), ("log_buffers", "on"),
            ("log_nested_statements", "on"), ("log_level", "notice"),
        ):  # fmt: skip
            pg.execute(f"SET auto_explain.{name} = {value}")  # type: ignore[arg-type]
        pg.execute("SELECT set_config('app.user_id', %s, false)", (str(admin_id),))
        pg.execute(
            "SELECT * FROM app.analytics_admin_dashboard(%(prev_start)s, %(granularity)s, %(start)s, "
            "%(end)s, %(providers)s, %(models)s, %(statuses)s)",
            params,
        ).fetchall()
    inner = [n for n in notices if "public.agent_runs" in n]  # not the outer Function Scan
    print("--- EXPLAIN (ANALYZE, BUFFERS) via auto_explain: the statement of app.analytics_admin_dashboard")
    for plan in inner[:1]:
        for line in plan.splitlines():
            if any(k in line for k in _PLAN_KEYS):
                print("   " + line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="analytics at scale")
    parser.add_argument("--quick", action="store_true", help="100,000 runs instead of 1,000,000")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse a database kept by --keep (migrated to head, no seeding)"
    )
    parser.add_argument(
        "--db-name",
        default=DB_NAME,
        help=f"database to create/reuse (default {DB_NAME}; another name keeps concurrent runs apart)",
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    runs = args.runs or (100_000 if args.quick else 1_000_000)
    db_name = args.db_name
    url = _url(db_name)
    print(f"machine: {machine()}")
    os.environ["ADVISOR_DATABASE_URL"] = url
    from core import db as core_db
    from core.analytics import (
        Filters,
        filter_options,
        load_admin_dashboard,
        load_dashboard,
        prompt_versions,
        recent_runs,
    )
    from core.analytics.dashboard import DASHBOARD_PARTS
    from core.analytics.statements import bound_figures_statement, filtering_lists, query_parameters
    from core.quotas import usage_summary
    from core.settings import reset_settings_cache

    reset_settings_cache()
    try:
        if args.reuse:
            core_db.migrate(url)  # a kept database gets any newer migration (no reseeding)
        else:
            _admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            _admin(f'CREATE DATABASE "{db_name}"')
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
            dsn = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{db_name}"
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

        all_time = Filters(datetime(2000, 1, 1, tzinfo=UTC), filters.end)

        def preview_figures() -> None:
            prompt_versions(user_id=user_id, filters=all_time)

        dash = load_dashboard(user_id=user_id, filters=filters)
        admin = load_admin_dashboard(admin_id=admin_id, filters=filters)
        print(
            f"user view: {dash.kpis.current.runs:,} runs in range; "
            f"admin view: {admin.kpis.current.runs:,} runs in range, {len(admin.by_user):,} users, "
            f"{len(admin.by_user_model):,} user x model rows"
        )
        print(
            f"prompt versions: user {len(dash.prompt_versions.by_prompt):,} prompts / "
            f"{len(dash.prompt_versions.by_atom):,} atom versions; admin {len(admin.prompt_versions.by_prompt):,} "
            f"prompts / {len(admin.prompt_versions.by_atom):,} atom versions, "
            f"{int(admin.prompt_versions.by_prompt['thumbs_up'].sum()):,} thumbs up"
        )
        user_ms = _time(user_page, args.reps)
        admin_ms = _time(admin_page, args.reps)
        preview_ms = _time(preview_figures, args.reps)
        for label, ms in (
            ("user page load ", user_ms),
            ("admin page load", admin_ms),
            ("prompt preview figures (user, all time)", preview_ms),
        ):
            print(f"{label} ({args.reps} reps): p50 {pct(ms, 50):.1f} ms, p95 {pct(ms, 95):.1f} ms")
        print("load average (1, 5, 15 min): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

        with core_db.user_session(user_id) as session:
            statement = bound_figures_statement(
                DASHBOARD_PARTS, dialect="postgresql", granularity="day", lists=filtering_lists(filters), scoped=True
            ).params(query_parameters(filters, user_id))
            _explain(session, statement, "the user dashboard's figures (as advisor_app, RLS on)")
        _explain_admin(db_name, admin_id, filters)

        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {rss_mb:.1f} MB")
        goal("analytics_user_p50", pct(user_ms, 50), "ms", "<=", 300)
        goal("analytics_admin_p50", pct(admin_ms, 50), "ms", "<=", 1500)
        goal("analytics_rss", rss_mb, "MB", "<", 200)
    finally:
        core_db.dispose_engines()
        if not args.keep:
            _admin(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
