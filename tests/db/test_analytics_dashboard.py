"""core.analytics.dashboard: one user's figures == an independent pandas/numpy computation.

Every SQL figure is recomputed from the rows read directly (``tests.analytics_reference``), on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core import analytics
from core.analytics import Filters
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


@pytest.fixture
def data(any_db_url: str) -> Reference:
    return seed_reference(any_db_url)


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_kpis_both_periods_match_pandas(data, case):
    result, runs, engine = data.result, data.runs, data.engine
    f = Filters(END - timedelta(days=7), END, **FILTER_CASES[case])
    for user_id in result.user_ids:
        got = analytics.kpis(user_id=user_id, filters=f, engine=engine)
        for period, df in (
            ("current", select_runs(runs, f, user_id)),
            ("previous", select_runs(runs, f.previous(), user_id)),
        ):
            k = getattr(got, period)
            exp = sums(df)
            assert len(df) > 0
            assert kpi_sums(k) == {n: exp[n] for n in KPI_INTS}
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
                assert getattr(k, attr) == pytest.approx(pct(df[col], q), rel=1e-12), (period, name)
        assert got.change("runs") == got.current.runs - got.previous.runs


@pytest.mark.parametrize("granularity", ["day", "week", "month"])
def test_dashboard_series_quality_breakdown_and_top_conversations(data, granularity):
    result, runs, convs, engine = data.result, data.runs, data.convs, data.engine
    f = Filters(END - timedelta(days=21), END)
    user_id = result.user_ids[1]
    dash = analytics.load_dashboard(user_id=user_id, filters=f, granularity=granularity, top=5, engine=engine)
    df = select_runs(runs, f, user_id).assign(bucket=lambda d: bucket(d["created_at"], granularity))
    if granularity == "month":
        assert df["bucket"].nunique() == 2
    assert_frames(dash.series, expected_grouped(df, ["bucket", "provider"], False), ["bucket", "provider"], SUM_COLS)
    assert_frames(dash.quality, expected_grouped(df, ["bucket"], True), ["bucket"], SUM_COLS + list(PCTS))
    assert_frames(
        dash.by_model,
        expected_grouped(df, ["provider", "model"], True),
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
            ]
            .fillna(0)
            .sum()
            .sum()
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


def test_filter_options_are_the_users_own(data):
    result, runs, engine = data.result, data.runs, data.engine
    user_id = result.user_ids[0]
    mine = runs[runs["user_id"] == user_id]
    opts = analytics.filter_options(user_id=user_id, engine=engine)
    assert set(opts.providers) == set(mine["provider"].dropna())
    assert set(opts.models) == set(mine["model"].dropna())
    assert opts.first_run_at == mine["created_at"].min().to_pydatetime()


def test_empty_and_invalid_inputs(data):
    result, engine = data.result, data.engine
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
