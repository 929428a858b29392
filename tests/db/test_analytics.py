"""core.analytics figures == an independent pandas/numpy computation over the raw rows.

Seeded: 3 users x ~300 runs (fixed seed) over 21 days, several providers/models/statuses, on SQLite
and on PostgreSQL. Every SQL figure is recomputed here from the rows read directly.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from bench.seed_runs import seed_runs
from core import analytics
from core.analytics import Filters
from core.db import NotFound, engine_for
from models import AgentRun, Conversation

END = datetime(2026, 3, 4, tzinfo=UTC)  # a Wednesday; the data spans three ISO weeks and two months
SUM_COLS = [
    "runs", "input_tokens", "output_tokens", "cost_usd", "errors", "fallbacks", "cache_tokens", "unknown_cost_runs",
]  # fmt: skip
PCTS = {  # latency over completed answers only; time to first token over every run that had one
    "latency_p50": ("ok_latency_ms", 50),
    "latency_p95": ("ok_latency_ms", 95),
    "ttft_p50": ("ttft_ms", 50),
    "ttft_p95": ("ttft_ms", 95),
}


@pytest.fixture
def data(any_db_url):
    result = seed_runs(database_url=any_db_url, users=3, runs=900, seed=11, days=21, end=END, progress=False)
    engine = engine_for(any_db_url)
    with engine.connect() as conn:  # the raw rows, read directly (owner/superuser connection)
        run_table, conv_table = AgentRun.__table__, Conversation.__table__  # type: ignore[attr-defined]
        runs = pd.DataFrame([dict(r._mapping) for r in conn.execute(select(run_table))])
        convs = pd.DataFrame([dict(r._mapping) for r in conn.execute(select(conv_table))])
    runs["cost_usd"] = runs["cost_usd"].astype("float64")
    runs["created_at"] = pd.to_datetime(runs["created_at"], utc=True)
    runs["ok_latency_ms"] = runs["latency_ms"].where(runs["status"] == "ok")
    assert set(runs["status"]) >= {"ok", "error", "interrupted"}
    assert runs["fallback_from"].notna().any()
    # the cases the definitions tell apart are in the data: failed runs with a latency, and runs
    # with fallback_from set that ended in an error
    assert (runs["latency_ms"].notna() & (runs["status"] != "ok")).any()
    assert (runs["fallback_from"].notna() & (runs["status"] == "error")).any()
    assert runs["provider"].nunique() >= 3
    # runs of unknown cost (tokens reported, no cost), and cache reads and cache writes
    assert (runs["cost_usd"].isna() & runs["input_tokens"].notna()).any()
    assert (runs["cached_input_tokens"].fillna(0) > 0).any() and (runs["cache_write_tokens"].fillna(0) > 0).any()
    return result, runs, convs, engine


def _select(runs: pd.DataFrame, f: Filters, user_id: uuid.UUID | None, *, start: datetime | None = None):
    m = (runs["created_at"] >= (start or f.start)) & (runs["created_at"] < f.end)
    if user_id is not None:
        m &= runs["user_id"] == user_id
    if f.providers:
        m &= runs["provider"].isin(f.providers)
    if f.models:
        m &= runs["model"].isin(f.models)
    if f.statuses:
        m &= runs["status"].isin(f.statuses)
    return runs[m]


def _sums(df: pd.DataFrame) -> dict[str, float]:
    return {
        "runs": len(df),
        "input_tokens": int(df["input_tokens"].fillna(0).sum()),
        "output_tokens": int(df["output_tokens"].fillna(0).sum()),
        "cost_usd": float(df["cost_usd"].fillna(0).sum()),
        "errors": int((df["status"] == "error").sum()),
        # an answer that came from a fallback (a run on which every provider failed fell back to nothing)
        "fallbacks": int((df["fallback_from"].notna() & (df["status"] != "error")).sum()),
        # cached input read + cache writes (input_tokens excludes both)
        "cache_tokens": int(df["cached_input_tokens"].fillna(0).sum() + df["cache_write_tokens"].fillna(0).sum()),
        # tokens reported, cost unknown: left out of cost_usd, and counted here
        "unknown_cost_runs": int(
            (df["cost_usd"].isna() & (df["input_tokens"].notna() | df["output_tokens"].notna())).sum()
        ),
    }


KPI_INTS = ("runs", "input_tokens", "output_tokens", "errors", "fallbacks", "cache_tokens", "unknown_cost_runs")


def _kpi_sums(k: analytics.Kpis) -> dict[str, int]:
    return {n: getattr(k, n) for n in KPI_INTS}


def _pct(values: pd.Series, q: float) -> float | None:
    v = values.dropna().to_numpy(dtype=float)
    return float(np.percentile(v, q)) if len(v) else None


def _expected_grouped(df: pd.DataFrame, keys: list[str], percentiles: bool) -> pd.DataFrame:
    rows = []
    for key, g in df.groupby(keys, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key, strict=True)) | _sums(g)
        if percentiles:
            row |= {name: _pct(g[col], q) for name, (col, q) in PCTS.items()}
        rows.append(row)
    return pd.DataFrame(rows)


def _assert_frames(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str], cols: list[str]) -> None:
    assert len(actual) == len(expected) > 0
    a = actual.sort_values(keys).reset_index(drop=True)
    e = expected.sort_values(keys).reset_index(drop=True)
    for k in keys:
        assert list(a[k]) == list(e[k]), k
    for c in cols:
        assert np.allclose(a[c].astype(float), e[c].astype(float), rtol=1e-9, atol=1e-9, equal_nan=True), c
    assert np.allclose(a["error_rate"], e["errors"] / e["runs"])
    assert np.allclose(a["fallback_rate"], e["fallbacks"] / e["runs"])


def _bucket(ts: pd.Series, granularity: str) -> pd.Series:
    naive = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    if granularity == "day":
        out = naive.dt.floor("D")
    elif granularity == "week":
        out = (naive - pd.to_timedelta(naive.dt.weekday, unit="D")).dt.floor("D")
    else:
        out = naive.dt.to_period("M").dt.start_time
    return out.dt.tz_localize("UTC").astype("datetime64[us, UTC]")


FILTER_CASES: dict[str, dict[str, Any]] = {
    "all": {},
    "providers": {"providers": ("openai", "anthropic")},
    "model_and_status": {"models": ("gpt-4o-mini", "claude-sonnet-4-5", "demo"), "statuses": ("ok", "error")},
}


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_kpis_both_periods_match_pandas(data, case):
    result, runs, _, engine = data
    f = Filters(END - timedelta(days=7), END, **FILTER_CASES[case])
    for user_id in result.user_ids:
        got = analytics.kpis(user_id=user_id, filters=f, engine=engine)
        for period, df in (
            ("current", _select(runs, f, user_id)),
            ("previous", _select(runs, f.previous(), user_id)),
        ):
            k = getattr(got, period)
            exp = _sums(df)
            assert len(df) > 0
            assert _kpi_sums(k) == {n: exp[n] for n in KPI_INTS}
            assert k.tokens == exp["input_tokens"] + exp["cache_tokens"] + exp["output_tokens"]
            assert k.cost_usd == pytest.approx(exp["cost_usd"], rel=1e-9)
            assert k.error_rate == pytest.approx(exp["errors"] / exp["runs"])
            assert k.fallback_rate == pytest.approx(exp["fallbacks"] / exp["runs"])
            for name, attr in (
                ("latency_p50", "latency_p50_ms"),
                ("latency_p95", "latency_p95_ms"),
                ("ttft_p50", "ttft_p50_ms"),
                ("ttft_p95", "ttft_p95_ms"),
            ):
                col, q = PCTS[name]
                assert getattr(k, attr) == pytest.approx(_pct(df[col], q), rel=1e-12), (period, name)
        assert got.change("runs") == got.current.runs - got.previous.runs


@pytest.mark.parametrize("granularity", ["day", "week", "month"])
def test_dashboard_series_quality_breakdown_and_top_conversations(data, granularity):
    result, runs, convs, engine = data
    f = Filters(END - timedelta(days=21), END)
    user_id = result.user_ids[1]
    dash = analytics.load_dashboard(user_id=user_id, filters=f, granularity=granularity, top=5, engine=engine)
    df = _select(runs, f, user_id).assign(bucket=lambda d: _bucket(d["created_at"], granularity))
    if granularity == "month":
        assert df["bucket"].nunique() == 2
    _assert_frames(
        dash.series, _expected_grouped(df, ["bucket", "provider"], False), ["bucket", "provider"], SUM_COLS
    )
    _assert_frames(dash.quality, _expected_grouped(df, ["bucket"], True), ["bucket"], SUM_COLS + list(PCTS))
    _assert_frames(
        dash.by_model,
        _expected_grouped(df, ["provider", "model"], True),
        ["provider", "model"],
        SUM_COLS + list(PCTS),
    )
    # top conversations by cost, with titles from the conversations table
    per_conv = (
        df.groupby("conversation_id")
        .agg(
            runs=("id", "size"),
            cost_usd=("cost_usd", lambda s: s.fillna(0).sum()),
            tokens=("input_tokens", lambda s: 0),
        )
        .reset_index()
    )
    per_conv["tokens"] = [
        int(
            df[df["conversation_id"] == c][
                ["input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens"]
            ].fillna(0).sum().sum()
        )
        for c in per_conv["conversation_id"]
    ]
    per_conv = per_conv.sort_values(["cost_usd", "runs"], ascending=False).head(5)
    top = dash.top_conversations
    assert list(top["conversation_id"]) == list(per_conv["conversation_id"])
    titles = dict(zip(convs["id"], convs["title"], strict=True))
    assert list(top["title"]) == [titles[c] for c in per_conv["conversation_id"]]
    assert np.allclose(top["cost_usd"], per_conv["cost_usd"])
    assert list(top["tokens"]) == list(per_conv["tokens"])
    assert list(top["runs"]) == list(per_conv["runs"])


def test_recent_runs_pages_newest_first_and_detail(data):
    result, runs, convs, engine = data
    f = Filters(END - timedelta(days=10), END, statuses=("ok", "error", "interrupted"))
    user_id = result.user_ids[2]
    expected = _select(runs, f, user_id).sort_values(["created_at", "id"], ascending=False)
    seen, page = [], 0
    while True:
        p = analytics.recent_runs(user_id=user_id, filters=f, page=page, page_size=40, engine=engine)
        seen += list(p.rows["id"])
        assert not {"user_message", "output"} & set(p.rows.columns)
        if not p.has_more:
            break
        page += 1
    assert page >= 1
    assert seen == list(expected["id"])
    raw = expected.iloc[0]
    d = analytics.run_detail(user_id=user_id, run_id=raw["id"], engine=engine)
    assert (d.user_message, d.output, d.request_id, d.prompt_sha256, d.status) == (
        raw["user_message"],
        raw["output"],
        raw["request_id"],
        raw["prompt_sha256"],
        raw["status"],
    )
    assert d.atom_versions == raw["atom_versions"]
    assert d.conversation_title == dict(zip(convs["id"], convs["title"], strict=True))[raw["conversation_id"]]
    with pytest.raises(NotFound):
        analytics.run_detail(user_id=user_id, run_id=uuid.uuid4(), engine=engine)


def test_filter_options_are_the_users_own(data):
    result, runs, _, engine = data
    user_id = result.user_ids[0]
    mine = runs[runs["user_id"] == user_id]
    opts = analytics.filter_options(user_id=user_id, engine=engine)
    assert set(opts.providers) == set(mine["provider"].dropna())
    assert set(opts.models) == set(mine["model"].dropna())
    assert opts.first_run_at == mine["created_at"].min().to_pydatetime()


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_admin_figures_match_pandas(data, case):
    result, runs, _, engine = data
    f = Filters(END - timedelta(days=14), END, **FILTER_CASES[case])
    dash = analytics.load_admin_dashboard(
        admin_id=result.admin_id, filters=f, granularity="week", engine=engine
    )
    df = _select(runs, f, None).assign(bucket=lambda d: _bucket(d["created_at"], "week"))
    prev = _select(runs, f.previous(), None)
    for k, rows in ((dash.kpis.current, df), (dash.kpis.previous, prev)):
        exp = _sums(rows)
        assert _kpi_sums(k) == {n: exp[n] for n in KPI_INTS}
        assert k.tokens == exp["input_tokens"] + exp["cache_tokens"] + exp["output_tokens"]
        assert k.latency_p95_ms == pytest.approx(_pct(rows["ok_latency_ms"], 95), rel=1e-12)
        assert k.ttft_p50_ms == pytest.approx(_pct(rows["ttft_ms"], 50), rel=1e-12)
    _assert_frames(
        dash.series, _expected_grouped(df, ["bucket", "provider"], False), ["bucket", "provider"], SUM_COLS
    )
    _assert_frames(dash.quality, _expected_grouped(df, ["bucket"], True), ["bucket"], SUM_COLS + list(PCTS))
    _assert_frames(dash.by_user, _expected_grouped(df, ["user_id"], False), ["user_id"], SUM_COLS)
    _assert_frames(
        dash.by_user_model,
        _expected_grouped(df, ["user_id", "provider", "model"], False),
        ["user_id", "provider", "model"],
        SUM_COLS,
    )
    emails = {u: f"seed11-user{i:05d}@example.com" for i, u in enumerate(result.user_ids)}
    assert all(emails[u] == e for u, e in zip(dash.by_user["user_id"], dash.by_user["email"], strict=True))


def test_non_admin_is_refused_admin_figures(data):
    result, _, _, engine = data
    with pytest.raises(analytics.AdminOnly):
        analytics.load_admin_dashboard(
            admin_id=result.user_ids[1], filters=Filters.last_days(7, now=END), engine=engine
        )


def test_empty_and_invalid_inputs(data):
    result, _, _, engine = data
    far = Filters(datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 2, 1, tzinfo=UTC))
    dash = analytics.load_dashboard(user_id=result.user_ids[0], filters=far, engine=engine)
    assert dash.is_empty and dash.kpis.current.error_rate is None and dash.kpis.current.latency_p50_ms is None
    assert dash.series.empty and dash.quality.empty and dash.by_model.empty and dash.top_conversations.empty
    assert analytics.kpis(user_id=uuid.uuid4(), filters=far, engine=engine).current.runs == 0
    with pytest.raises(ValueError):
        Filters(END, END - timedelta(days=1))
    with pytest.raises(ValueError):
        Filters(datetime(2026, 1, 1), END)  # naive
    with pytest.raises(ValueError):
        Filters(END - timedelta(days=1), END, statuses=("exploded",))
    with pytest.raises(ValueError):
        analytics.load_dashboard(user_id=result.user_ids[0], filters=far, granularity="hour", engine=engine)  # type: ignore[arg-type]


def test_month_projection():
    from decimal import Decimal

    now = datetime(2026, 4, 10, 12, tzinfo=UTC)  # 9.5 of 30 days elapsed
    assert analytics.project_month_cost(cost_month_usd=Decimal("19"), now=now) == Decimal("60.0000")
    assert analytics.project_month_cost(cost_month_usd=Decimal("0"), now=now) == Decimal("0")


def test_every_column_the_figures_read_is_in_both_covering_indexes(pg_url):
    """The analytics read ``agent_runs`` by index-only scans of two covering indexes (migrations 0003
    and 0007). A figure that reads a column missing from them falls back to heap reads: summing the
    cache token columns without adding them made the admin view 2.3x slower on 1,000,000 runs."""
    import re

    from sqlalchemy import text

    read = set(re.findall(r"\br\.(\w+)", analytics._SUMS + analytics._PG_PERCENTILES))
    read |= {"created_at", "user_id", "provider", "model", "status"}  # the filters and groupings
    assert {"cached_input_tokens", "cache_write_tokens", "cost_usd", "latency_ms"} <= read
    with engine_for(pg_url).connect() as conn:
        covered: dict[str, list[str]] = dict(
            conn.execute(
                text(
                    "SELECT i.relname, array_agg(a.attname::text) FROM pg_index x "
                    "JOIN pg_class i ON i.oid = x.indexrelid "
                    "JOIN pg_attribute a ON a.attrelid = x.indexrelid "
                    "WHERE x.indrelid = 'agent_runs'::regclass GROUP BY i.relname"
                )
            ).all()
        )
    for name in ("ix_agent_runs_created_at", "ix_agent_runs_user_id_created_at"):
        assert read <= set(covered[name]), (name, sorted(read - set(covered[name])))
