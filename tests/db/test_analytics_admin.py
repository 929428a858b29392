"""core.analytics.admin: figures across users == pandas; admins only; the PostgreSQL function is the
one generated from the figure definitions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from core import analytics
from core.analytics import Filters
from core.analytics.admin import ADMIN_PARTS
from core.analytics.admin_function import function_body, snapshot
from core.analytics.statements import result_columns
from core.db import engine_for
from core.settings import ROOT
from tests.analytics_reference import (
    END,
    FILTER_CASES,
    KPI_INTS,
    PCTS,
    SUM_COLS,
    Reference,
    assert_frames,
    bucket,
    expected_grouped,
    kpi_sums,
    pct,
    seed_reference,
    select_runs,
    sums,
)

SNAPSHOTS = ROOT / "migrations" / "sql"
MIGRATIONS = ROOT / "migrations" / "versions"


@pytest.fixture
def data(any_db_url: str) -> Reference:
    return seed_reference(any_db_url)


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_admin_figures_match_pandas(data, case):
    result, runs, engine = data.result, data.runs, data.engine
    f = Filters(END - timedelta(days=14), END, **FILTER_CASES[case])
    dash = analytics.load_admin_dashboard(admin_id=result.admin_id, filters=f, granularity="week", engine=engine)
    df = select_runs(runs, f, None).assign(bucket=lambda d: bucket(d["created_at"], "week"))
    prev = select_runs(runs, f.previous(), None)
    for k, rows in ((dash.kpis.current, df), (dash.kpis.previous, prev)):
        exp = sums(rows)
        assert kpi_sums(k) == {n: exp[n] for n in KPI_INTS}
        assert k.tokens == exp["input_tokens"] + exp["cache_tokens"] + exp["output_tokens"]
        assert k.latency_p95_ms == pytest.approx(pct(rows["ok_latency_ms"], 95), rel=1e-12)
        assert k.ttft_p50_ms == pytest.approx(pct(rows["ttft_ms"], 50), rel=1e-12)
    assert_frames(dash.series, expected_grouped(df, ["bucket", "provider"], False), ["bucket", "provider"], SUM_COLS)
    assert_frames(dash.quality, expected_grouped(df, ["bucket"], True), ["bucket"], SUM_COLS + list(PCTS))
    assert_frames(dash.by_user, expected_grouped(df, ["user_id"], False), ["user_id"], SUM_COLS)
    assert_frames(
        dash.by_user_model,
        expected_grouped(df, ["user_id", "provider", "model"], False),
        ["user_id", "provider", "model"],
        SUM_COLS,
    )
    emails = {u: f"seed11-user{i:05d}@example.com" for i, u in enumerate(result.user_ids)}
    assert all(emails[u] == e for u, e in zip(dash.by_user["user_id"], dash.by_user["email"], strict=True))


def test_admin_tables_are_sorted_by_cost(data):
    dash = analytics.load_admin_dashboard(
        admin_id=data.result.admin_id, filters=Filters(END - timedelta(days=14), END), engine=data.engine
    )
    for table in (dash.by_user, dash.by_user_model):
        costs = list(table["cost_usd"])
        assert costs == sorted(costs, reverse=True)
    assert list(dash.series["bucket"]) == sorted(dash.series["bucket"])


def test_non_admin_is_refused_admin_figures(data):
    result, engine = data.result, data.engine
    with pytest.raises(analytics.AdminOnly):
        analytics.load_admin_dashboard(
            admin_id=result.user_ids[1], filters=Filters.last_days(7, now=END), engine=engine
        )


def test_the_newest_admin_function_snapshot_is_what_the_figures_generate():
    """Migrations create the admin function from a snapshot of the generated SQL. A figure or view of
    the admin dashboard changed without a new migration and snapshot fails here; write it with
    ``python -m core.analytics.admin_function <revision> > migrations/sql/<revision>_analytics_admin_dashboard.sql``."""
    newest = max(SNAPSHOTS.glob("*_analytics_admin_dashboard.sql"))
    assert newest.name >= "0009"  # the first generated one
    revision = newest.name.split("_", 1)[0]
    assert newest.read_text() == snapshot(revision)
    migration = next(MIGRATIONS.glob(f"{revision}_*.py")).read_text()
    assert newest.name in migration  # the migration of that revision runs it


def test_the_admin_function_in_the_database_is_the_generated_one(pg_url):
    """The function in a migrated database runs exactly the statement compiled from the figures."""
    with engine_for(pg_url).connect() as conn:
        body, names, modes = conn.execute(
            text(
                "SELECT p.prosrc, p.proargnames, p.proargmodes FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = 'app' AND p.proname = 'analytics_admin_dashboard'"
            )
        ).one()
    assert body == function_body()
    outputs = [name for name, mode in zip(names, modes, strict=True) if mode == "t"]
    assert outputs == [name for name, _ in result_columns(ADMIN_PARTS, email=True)]
