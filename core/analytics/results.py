"""What the analytics functions return, and how rows of the combined statement become those results."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.analytics.figures import (
    FIGURES,
    PER,
    PERCENTILE_NAMES,
    RATES,
    SUM_NAMES,
    TIMES,
    Figure,
    pandas_dtype,
    rate,
    total_tokens,
)
from core.analytics.filters import Filters, Granularity
from core.analytics.statements import KPIS, View
from models import RUN_STATUSES

if TYPE_CHECKING:
    from core.analytics.versions import PromptVersions

Rows = Sequence[Mapping[Any, Any]]  # rows as SQLAlchemy mappings (RowMapping)


@dataclass(frozen=True)
class Kpis:
    runs: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    errors: int = 0
    fallbacks: int = 0
    cache_tokens: int = 0  # cached input read + cache writes (input_tokens excludes both)
    unknown_cost_runs: int = 0  # runs that used tokens but have no cost (left out of cost_usd)
    interrupted: int = 0  # answers cut off part way; by cause below (they add up to it)
    interrupted_process_stopped: int = 0
    interrupted_shutdown: int = 0
    interrupted_user_stop: int = 0
    interrupted_cut_stream: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None

    @property
    def tokens(self) -> int:
        """Every token, as the daily token quota counts them: input, cache and output."""
        return int(total_tokens(self.input_tokens, self.cache_tokens, self.output_tokens))

    @property
    def error_rate(self) -> float | None:
        return rate(self.errors, self.runs)

    @property
    def fallback_rate(self) -> float | None:
        return rate(self.fallbacks, self.runs)


KPI_NAMES = (
    "runs", "tokens", "input_tokens", "output_tokens", "cache_tokens", "cost_usd", "unknown_cost_runs",
    "error_rate", "fallback_rate", "latency_p50_ms", "latency_p95_ms", "ttft_p50_ms", "ttft_p95_ms",
)  # fmt: skip


@dataclass(frozen=True)
class KpiComparison:
    """KPIs of the filtered period and of the previous period of equal length."""

    current: Kpis
    previous: Kpis

    def value(self, name: str) -> float | None:
        if name not in KPI_NAMES:
            raise KeyError(name)
        result: float | None = getattr(self.current, name)
        return result

    def change(self, name: str) -> float | None:
        """``current - previous`` (None when either side has no value)."""
        if name not in KPI_NAMES:
            raise KeyError(name)
        now, before = getattr(self.current, name), getattr(self.previous, name)
        if now is None or before is None:
            return None
        return float(now) - float(before)


@dataclass(frozen=True)
class Dashboard:
    """Every figure of one analytics page load for one user.

    ``series``: bucket, provider, the sums (runs, input_tokens, output_tokens, cost_usd, errors,
    fallbacks, cache_tokens, unknown_cost_runs), tokens, error_rate, fallback_rate.
    ``quality``: bucket, the same, latency_p50, latency_p95, ttft_p50, ttft_p95. ``by_model``:
    provider, model and the same figures. ``prompt_versions``: per prompt and per atom version
    (``core.analytics.versions``). ``top_conversations``: conversation_id, title, runs, tokens,
    cost_usd, last_run_at.
    """

    filters: Filters
    granularity: Granularity
    kpis: KpiComparison
    series: pd.DataFrame = field(repr=False)
    quality: pd.DataFrame = field(repr=False)
    by_model: pd.DataFrame = field(repr=False)
    prompt_versions: PromptVersions = field(repr=False)
    top_conversations: pd.DataFrame = field(repr=False)

    @property
    def is_empty(self) -> bool:
        return self.kpis.current.runs == 0


@dataclass(frozen=True)
class AdminDashboard:
    """The same figures across all users, plus per user and per user x provider x model.

    ``by_user``: user_id, email, the sums, tokens, error_rate, fallback_rate. ``by_user_model``:
    the same with provider and model. ``prompt_versions``: every user's runs per prompt and per
    atom version (aggregates: no user, no content).
    """

    filters: Filters
    granularity: Granularity
    kpis: KpiComparison
    series: pd.DataFrame = field(repr=False)
    quality: pd.DataFrame = field(repr=False)
    by_user: pd.DataFrame = field(repr=False)
    by_user_model: pd.DataFrame = field(repr=False)
    prompt_versions: PromptVersions = field(repr=False)


@dataclass(frozen=True)
class FilterOptions:
    providers: tuple[str, ...]
    models: tuple[str, ...]
    statuses: tuple[str, ...] = RUN_STATUSES
    first_run_at: datetime | None = None


@dataclass(frozen=True)
class RunsPage:
    """One page of runs, newest first. ``rows`` has no message content (see ``run_detail``)."""

    rows: pd.DataFrame = field(repr=False)
    page: int
    page_size: int
    has_more: bool


@dataclass(frozen=True)
class RunDetail:
    id: uuid.UUID
    conversation_id: uuid.UUID
    conversation_title: str
    agent: str
    created_at: datetime
    status: str
    provider: str | None
    model: str | None
    fallback_from: str | None
    input_tokens: int | None
    output_tokens: int | None
    cached_input_tokens: int | None
    cache_write_tokens: int | None
    cost_usd: Decimal | None
    ttft_ms: int | None
    latency_ms: int | None
    prompt_sha256: str | None
    atom_versions: list[Any] | None
    request_id: str
    error_code: str | None
    user_message: str
    output: str


# --------------------------------------------------------------------------------------------
# rows of the combined statement -> results
# --------------------------------------------------------------------------------------------


class FigureRows:
    """The rows of one combined statement, by view (``figure``) and period."""

    def __init__(self, rows: Iterable[Mapping[Any, Any]]) -> None:
        self._parts: dict[tuple[str, str], list[Mapping[Any, Any]]] = {}
        for row in rows:
            self._parts.setdefault((row["figure"], row["period"]), []).append(row)

    def rows(self, view: View, period: str = "current") -> Rows:
        return self._parts.get((view.name, period), [])

    def frame(self, view: View, *, email: bool = False) -> pd.DataFrame:
        columns = [*view.keys, *(s.name for s in view.sums), *(p.name for p in view.percentiles)]
        if email and "user_id" in columns:
            columns.insert(columns.index("user_id") + 1, "email")
        rows = self.rows(view)
        df = pd.DataFrame([[row[c] for c in columns] for row in rows], columns=columns)
        return finish(df, (*view.sums, *view.percentiles), view.order)

    def kpis(self) -> KpiComparison:
        return KpiComparison(_kpis(self.rows(KPIS, "current")), _kpis(self.rows(KPIS, "previous")))


def _kpis(rows: Rows) -> Kpis:
    if not rows:
        return Kpis()
    (row,) = rows
    values: dict[str, Any] = {n: int(row[n] or 0) for n in SUM_NAMES if n != "cost_usd"}
    values["cost_usd"] = float(row["cost_usd"] or 0)
    for name in PERCENTILE_NAMES:
        values[f"{name}_ms"] = None if row[name] is None else float(row[name])
    return Kpis(**values)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(hex=str(value))  # SQLite: hex text


def finish(
    df: pd.DataFrame, figures: Sequence[Figure] = FIGURES, order: Sequence[tuple[str, bool]] = ()
) -> pd.DataFrame:
    """Types the ``figures``' columns, adds the derived ones (tokens, rates, per-answer figures) and
    sorts by ``order``."""
    dtypes = {f.name: pandas_dtype(f) for f in figures if f.name in df.columns}
    df = df.astype({name: dtype for name, dtype in dtypes.items() if dtype is not None})
    derived: dict[str, Any] = {}
    for name in ("bucket", *TIMES):
        if name in df:
            derived[name] = pd.to_datetime(df[name], utc=True)
    if "user_id" in df:
        derived["user_id"] = [_uuid(v) for v in df["user_id"]]
    if {"input_tokens", "cache_tokens", "output_tokens"} <= set(df.columns):
        derived["tokens"] = total_tokens(df["input_tokens"], df["cache_tokens"], df["output_tokens"])
    if "runs" in df:
        derived |= {name: rate(df[count], df["runs"]) for name, count in RATES.items() if count in df}
    for name, (counts, by) in PER.items():
        if by in df and all(c in df for c in counts):
            derived[name] = rate(sum((df[c] for c in counts[1:]), df[counts[0]]), df[by])
    df = df.assign(**derived)
    if order and len(df):
        names, ascending = zip(*order, strict=True)
        df = df.sort_values(list(names), ascending=list(ascending), kind="stable", na_position="last")
    return df.reset_index(drop=True)
