"""The analytics figures recomputed independently, with pandas/numpy over the raw rows.

Seeded: 3 users x ~300 runs (fixed seed) over 21 days, several providers/models/statuses, on SQLite
and on PostgreSQL. The tests of ``core.analytics`` compare every SQL figure with these.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bench.seed_runs import SeedResult, seed_runs
from core.analytics import Filters, Kpis
from core.db import engine_for
from models import AgentRun, Conversation

END = datetime(2026, 3, 4, tzinfo=UTC)  # a Wednesday; the data spans three ISO weeks and two months
INTERRUPTIONS = (
    "interrupted", "interrupted_process_stopped", "interrupted_shutdown", "interrupted_user_stop",
    "interrupted_cut_stream",
)  # fmt: skip
SUM_COLS = [
    "runs", "input_tokens", "output_tokens", "cost_usd", "errors", "fallbacks", "cache_tokens", "unknown_cost_runs",
    *INTERRUPTIONS,
]  # fmt: skip
PCTS = {  # latency over completed answers only; time to first token over every run that had one
    "latency_p50": ("ok_latency_ms", 50),
    "latency_p95": ("ok_latency_ms", 95),
    "ttft_p50": ("ttft_ms", 50),
    "ttft_p95": ("ttft_ms", 95),
}
KPI_INTS = (
    "runs", "input_tokens", "output_tokens", "errors", "fallbacks", "cache_tokens", "unknown_cost_runs", *INTERRUPTIONS,
)  # fmt: skip
FILTER_CASES: dict[str, dict[str, Any]] = {
    "all": {},
    "providers": {"providers": ("openai", "anthropic")},
    "model_and_status": {"models": ("gpt-4o-mini", "claude-sonnet-4-5", "demo"), "statuses": ("ok", "error")},
}


@dataclass(frozen=True)
class Reference:
    result: SeedResult
    runs: pd.DataFrame
    convs: pd.DataFrame
    engine: Engine


def seed_reference(url: str) -> Reference:
    """Seed the database at ``url`` and read every run and conversation back directly."""
    result = seed_runs(database_url=url, users=3, runs=900, seed=11, days=21, end=END, progress=False)
    engine = engine_for(url)
    with engine.connect() as conn:  # the raw rows, read directly (owner/superuser connection)
        run_table, conv_table = AgentRun.__table__, Conversation.__table__  # type: ignore[attr-defined]
        runs = pd.DataFrame([dict(r._mapping) for r in conn.execute(select(run_table))])
        convs = pd.DataFrame([dict(r._mapping) for r in conn.execute(select(conv_table))])
    runs["cost_usd"] = runs["cost_usd"].astype("float64")
    runs["created_at"] = pd.to_datetime(runs["created_at"], utc=True)
    runs["ok_latency_ms"] = runs["latency_ms"].where(runs["status"] == "ok")
    assert set(runs["status"]) >= {"ok", "error", "interrupted"}
    # every cause of an interruption, and a cut stream
    assert set(runs.loc[runs["status"] == "interrupted", "error_code"]) >= {
        "process_stopped", "shutdown", "cancelled", "timeout"}
    assert runs["fallback_from"].notna().any()
    # the cases the definitions tell apart are in the data: failed runs with a latency, and runs
    # with fallback_from set that ended in an error
    assert (runs["latency_ms"].notna() & (runs["status"] != "ok")).any()
    assert (runs["fallback_from"].notna() & (runs["status"] == "error")).any()
    assert runs["provider"].nunique() >= 3
    # runs of unknown cost (tokens reported, no cost), and cache reads and cache writes
    assert (runs["cost_usd"].isna() & runs["input_tokens"].notna()).any()
    assert (runs["cached_input_tokens"].fillna(0) > 0).any() and (runs["cache_write_tokens"].fillna(0) > 0).any()
    # rated answers both ways, and superseded runs (the prompt-version figures)
    assert {1, -1} <= set(runs["feedback"].dropna().astype(int)) and runs["superseded_by"].notna().any()
    return Reference(result, runs, convs, engine)


def select_runs(runs: pd.DataFrame, f: Filters, user_id: uuid.UUID | None, *, start: datetime | None = None):
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


def sums(df: pd.DataFrame) -> dict[str, float]:
    interrupted, code = df["status"] == "interrupted", df["error_code"]
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
        # answers cut off part way, and why: the process died, it was stopped, the user stopped, or
        # (any other code) the provider's stream was cut
        "interrupted": int(interrupted.sum()),
        "interrupted_process_stopped": int((interrupted & (code == "process_stopped")).sum()),
        "interrupted_shutdown": int((interrupted & (code == "shutdown")).sum()),
        "interrupted_user_stop": int((interrupted & (code == "cancelled")).sum()),
        "interrupted_cut_stream": int(
            (interrupted & ~code.isin(["process_stopped", "shutdown", "cancelled"])).sum()
        ),
    }


def kpi_sums(k: Kpis) -> dict[str, int]:
    return {n: getattr(k, n) for n in KPI_INTS}


def pct(values: pd.Series, q: float) -> float | None:
    v = values.dropna().to_numpy(dtype=float)
    return float(np.percentile(v, q)) if len(v) else None


def expected_grouped(df: pd.DataFrame, keys: list[str], percentiles: bool) -> pd.DataFrame:
    rows = []
    for key, g in df.groupby(keys, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(keys, key, strict=True)) | sums(g)
        if percentiles:
            row |= {name: pct(g[col], q) for name, (col, q) in PCTS.items()}
        rows.append(row)
    return pd.DataFrame(rows)


def assert_frames(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str], cols: list[str]) -> None:
    assert len(actual) == len(expected) > 0
    a = actual.sort_values(keys).reset_index(drop=True)
    e = expected.sort_values(keys).reset_index(drop=True)
    for k in keys:
        assert list(a[k]) == list(e[k]), k
    for c in cols:
        assert np.allclose(a[c].astype(float), e[c].astype(float), rtol=1e-9, atol=1e-9, equal_nan=True), c
    assert np.allclose(a["error_rate"], e["errors"] / e["runs"])
    assert np.allclose(a["fallback_rate"], e["fallbacks"] / e["runs"])


def bucket(ts: pd.Series, granularity: str) -> pd.Series:
    naive = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    if granularity == "day":
        out = naive.dt.floor("D")
    elif granularity == "week":
        out = (naive - pd.to_timedelta(naive.dt.weekday, unit="D")).dt.floor("D")
    else:
        out = naive.dt.to_period("M").dt.start_time
    return out.dt.tz_localize("UTC").astype("datetime64[us, UTC]")


VERSION_COLS = [
    "runs", "answers", "thumbs_up", "thumbs_down", "superseded", "interrupted", "errors", "input_tokens",
    "cache_tokens", "input_runs", "cost_usd", "unknown_cost_runs",
]  # fmt: skip


def version_sums(df: pd.DataFrame) -> dict[str, Any]:
    """The prompt-version figures of a group of runs, from the raw rows."""
    base = sums(df)
    return {
        **{k: base[k] for k in ("runs", "errors", "input_tokens", "cache_tokens", "cost_usd", "unknown_cost_runs")},
        "answers": int((df["status"] == "ok").sum()),
        "thumbs_up": int((df["feedback"] == 1).sum()),
        "thumbs_down": int((df["feedback"] == -1).sum()),
        "superseded": int(df["superseded_by"].notna().sum()),
        "interrupted": int((df["status"] == "interrupted").sum()),
        "input_runs": int(df["input_tokens"].notna().sum()),
        "first_used": df["created_at"].min(),
        "last_used": df["created_at"].max(),
    }


def expected_versions(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per prompt and per atom version (a run counts for each atom version of its prompt)."""
    df = df[df["prompt_sha256"].notna()]
    by_prompt = pd.DataFrame(
        [{"prompt_sha256": sha} | version_sums(g) for sha, g in df.groupby("prompt_sha256", sort=True)]
    )
    pairs = df.assign(pair=[[tuple(p) for p in v] for v in df["atom_versions"]]).explode("pair")
    pairs = pairs.assign(atom=[p[0] for p in pairs["pair"]], version=[int(p[1]) for p in pairs["pair"]])
    by_atom = pd.DataFrame(
        [{"atom": a, "version": v} | version_sums(g) for (a, v), g in pairs.groupby(["atom", "version"], sort=True)]
    )
    return by_prompt, by_atom


def assert_version_frames(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> None:
    assert len(actual) == len(expected) > 0
    a = actual.sort_values(keys).reset_index(drop=True)
    e = expected.sort_values(keys).reset_index(drop=True)
    for k in keys:
        assert list(a[k]) == list(e[k]), k
    for c in VERSION_COLS:
        assert np.allclose(a[c].astype(float), e[c].astype(float), rtol=1e-9, atol=1e-9), c
    for c in ("first_used", "last_used"):
        assert list(a[c]) == [pd.Timestamp(t) for t in e[c]], c
    assert np.allclose(a["thumbs_up_rate"], e["thumbs_up"] / e["runs"])
    assert np.allclose(a["thumbs_down_rate"], e["thumbs_down"] / e["runs"])
    assert np.allclose(a["superseded_rate"], e["superseded"] / e["runs"])
    assert np.allclose(a["interruption_rate"], e["interrupted"] / e["runs"])
    assert np.allclose(a["avg_input_tokens"], (e["input_tokens"] + e["cache_tokens"]) / e["input_runs"])
    assert np.allclose(a["cost_per_answer"], e["cost_usd"] / e["answers"])
