"""Usage analytics: every figure is a SQL aggregate computed by the database.

Nothing here loads a user's runs into memory to count them: each function sends one aggregate
query and turns its (small) result into a pandas DataFrame or a dataclass for the charts.

* **Two walls.** User figures run in ``user_session(user_id)`` (row-level security on PostgreSQL)
  *and* filter ``agent_runs.user_id`` explicitly.
* **Admin figures** span users. On PostgreSQL they come from one SECURITY DEFINER function
  (``app.analytics_admin_dashboard``, migration 0004), which checks that the caller is an
  administrator, returns aggregates only (rows tagged ``figure``: kpis, series, quality, usage) and
  computes its five independent aggregates as one Parallel Append. On SQLite (no RLS) the same
  aggregates run in ``system_session()`` after an ``is_admin`` check. Neither path ever returns
  message content, titles or request ids.
* **Percentiles** (p50/p95 of latency and time to first token) are ``percentile_cont`` on
  PostgreSQL. SQLite has no ordered-set aggregates; there an ordered window query picks the two
  neighbouring values and interpolates exactly as ``percentile_cont`` (and ``numpy.percentile``'s
  default ``linear`` method) do: position ``h = (n - 1) * p``, ``v[floor h] + (h - floor h) *
  (v[floor h + 1] - v[floor h])``. NULL values are ignored, as by ``percentile_cont``.
* **Definitions.** A run counts in a period when ``start <= created_at < end`` (UTC). Error rate =
  runs with ``status = 'error'`` / runs; fallback rate = runs answered (not ``error``) with
  ``fallback_from`` set / runs -- a run on which every provider failed did not fall back to
  anything; both over the runs that pass the filters (every status unless filtered). Latency
  percentiles are over completed answers (``status = 'ok'``): an error's "latency" is its time to
  fail; time to first token is over every run that had one. Tokens and cost are sums with NULL as 0.
  Tokens are input + cache (cached input read and cache writes) + output, as the daily token quota
  counts them. A run of **unknown cost** used tokens (input or output reported) but has no cost: its
  model is not in ``pricing.toml``, or its answer was cut before the provider reported its output;
  the cost sums leave it out, and ``unknown_cost_runs`` says how many there are.
  Time buckets are UTC days, ISO weeks (Monday) or months.
* **Round trips.** ``load_dashboard`` answers one page load with five queries in one transaction
  (KPIs of both periods in one query, series, quality, breakdown, top conversations);
  ``load_admin_dashboard`` with one on PostgreSQL.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import pandas as pd
from sqlalchemy import Uuid, bindparam, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.elements import TextClause
from sqlmodel import Session

from core.db import NotFound, get_engine, system_session, user_session
from models import RUN_STATUSES
from models.types import JSONType, UTCDateTime

Granularity = Literal["day", "week", "month"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month")
MAX_PAGE_SIZE = 500


class AdminOnly(PermissionError):
    """The caller is not an administrator (raised for every admin figure)."""


# --------------------------------------------------------------------------------------------
# inputs and results
# --------------------------------------------------------------------------------------------


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (UTC)")
    return value.astimezone(UTC)


def _clean(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted({v for v in values if v}))


@dataclass(frozen=True)
class Filters:
    """Which runs a figure covers: ``start <= created_at < end`` (UTC) and optional value lists.

    An empty tuple means "any". Values are de-duplicated and sorted, so equal filters compare
    (and cache) equal.
    """

    start: datetime
    end: datetime
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        start, end = _utc(self.start, "start"), _utc(self.end, "end")
        if end <= start:
            raise ValueError("the end of the date range must be after its start")
        statuses = _clean(self.statuses)
        unknown = [s for s in statuses if s not in RUN_STATUSES]
        if unknown:
            raise ValueError(f"unknown status(es): {', '.join(unknown)}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "providers", _clean(self.providers))
        object.__setattr__(self, "models", _clean(self.models))
        object.__setattr__(self, "statuses", statuses)

    @classmethod
    def last_days(cls, days: int, *, now: datetime | None = None, **values: tuple[str, ...]) -> Filters:
        """The ``days`` whole UTC days ending with today (today included)."""
        if days < 1:
            raise ValueError("days must be at least 1")
        now = _utc(now or datetime.now(UTC), "now")
        end = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        return cls(start=end - timedelta(days=days), end=end, **values)

    @property
    def previous_start(self) -> datetime:
        """Start of the previous period of equal length, which ends where this one starts."""
        return self.start - (self.end - self.start)

    def previous(self) -> Filters:
        return Filters(self.previous_start, self.start, self.providers, self.models, self.statuses)


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
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None

    @property
    def tokens(self) -> int:
        """Every token, as the daily token quota counts them: input, cache and output."""
        return self.input_tokens + self.cache_tokens + self.output_tokens

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.runs if self.runs else None

    @property
    def fallback_rate(self) -> float | None:
        return self.fallbacks / self.runs if self.runs else None


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

    ``series``: bucket, provider, runs, input_tokens, output_tokens, cost_usd, errors, fallbacks,
    cache_tokens, unknown_cost_runs.
    ``quality``: bucket, runs, …, error_rate, fallback_rate, latency_p50, latency_p95, ttft_p50,
    ttft_p95. ``by_model``: provider, model and the same figures. ``top_conversations``:
    conversation_id, title, runs, tokens, cost_usd, last_run_at.
    """

    filters: Filters
    granularity: Granularity
    kpis: KpiComparison
    series: pd.DataFrame = field(repr=False)
    quality: pd.DataFrame = field(repr=False)
    by_model: pd.DataFrame = field(repr=False)
    top_conversations: pd.DataFrame = field(repr=False)

    @property
    def is_empty(self) -> bool:
        return self.kpis.current.runs == 0


@dataclass(frozen=True)
class AdminDashboard:
    """The same figures across all users, plus per user and per user x provider x model.

    ``by_user``: user_id, email, runs, input_tokens, output_tokens, cost_usd, errors, fallbacks,
    cache_tokens, unknown_cost_runs, error_rate, fallback_rate. ``by_user_model``: the same with provider and model.
    """

    filters: Filters
    granularity: Granularity
    kpis: KpiComparison
    series: pd.DataFrame = field(repr=False)
    quality: pd.DataFrame = field(repr=False)
    by_user: pd.DataFrame = field(repr=False)
    by_user_model: pd.DataFrame = field(repr=False)


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
# SQL building blocks (fixed fragments only; every value is a bound parameter)
# --------------------------------------------------------------------------------------------

_SUMS = """
    COUNT(*) AS runs,
    COALESCE(SUM(r.input_tokens), 0) AS input_tokens,
    COALESCE(SUM(r.output_tokens), 0) AS output_tokens,
    COALESCE(SUM(r.cost_usd), 0) AS cost_usd,
    COALESCE(SUM(CASE WHEN r.status = 'error' THEN 1 ELSE 0 END), 0) AS errors,
    COUNT(CASE WHEN r.status <> 'error' THEN r.fallback_from END) AS fallbacks,
    COALESCE(SUM(COALESCE(r.cached_input_tokens, 0) + COALESCE(r.cache_write_tokens, 0)), 0) AS cache_tokens,
    COUNT(CASE WHEN r.cost_usd IS NULL AND (r.input_tokens IS NOT NULL OR r.output_tokens IS NOT NULL)
               THEN 1 END) AS unknown_cost_runs"""

_PG_PERCENTILES = """,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms) FILTER (WHERE r.status = 'ok') AS latency_p50,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) FILTER (WHERE r.status = 'ok') AS latency_p95,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY r.ttft_ms) AS ttft_p50,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY r.ttft_ms) AS ttft_p95"""

_PERCENTILE_COLUMNS = {
    "latency_p50": ("latency_ms", "lat", "0.5"),
    "latency_p95": ("latency_ms", "lat", "0.95"),
    "ttft_p50": ("ttft_ms", "ttft", "0.5"),
    "ttft_p95": ("ttft_ms", "ttft", "0.95"),
}

_BUCKET = {
    "postgresql": {
        "day": "date_trunc('day', r.created_at AT TIME ZONE 'UTC')",
        "week": "date_trunc('week', r.created_at AT TIME ZONE 'UTC')",
        "month": "date_trunc('month', r.created_at AT TIME ZONE 'UTC')",
    },
    "sqlite": {  # created_at is stored as naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'
        "day": "strftime('%Y-%m-%d', r.created_at)",
        "week": "date(r.created_at, 'weekday 0', '-6 days')",  # the Monday of its ISO week
        "month": "strftime('%Y-%m-01', r.created_at)",
    },
}

_SUM_NAMES = (
    "runs", "input_tokens", "output_tokens", "cost_usd", "errors", "fallbacks", "cache_tokens", "unknown_cost_runs",
)  # fmt: skip
_PCT_NAMES = tuple(_PERCENTILE_COLUMNS)


def _sqlite_percentile(column: str, prefix: str, p: str) -> str:
    """percentile_cont(p) over a window-ranked CTE (``<prefix>_i`` 0-based rank, ``<prefix>_n``)."""
    floor = f"CAST(({prefix}_n - 1) * {p} AS INTEGER)"
    lo = f"MAX(CASE WHEN {prefix}_i = {floor} THEN {column} END)"
    hi = f"MAX(CASE WHEN {prefix}_i = {floor} + 1 THEN {column} END)"
    frac = f"((MAX({prefix}_n) - 1) * {p} - CAST((MAX({prefix}_n) - 1) * {p} AS INTEGER))"
    return f"({lo} + {frac} * (COALESCE({hi}, {lo}) - {lo}))"


def _where(filters: Filters, *, scoped: bool, lower: str = "start") -> str:
    parts = [f"r.created_at >= :{lower}", "r.created_at < :end"]
    if scoped:
        parts.insert(0, "r.user_id = :user_id")
    if filters.providers:
        parts.append("r.provider IN :providers")
    if filters.models:
        parts.append("r.model IN :models")
    if filters.statuses:
        parts.append("r.status IN :statuses")
    return " AND ".join(parts)


def _params(filters: Filters, user_id: uuid.UUID | None, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "start": filters.start,
        "end": filters.end,
        "prev_start": filters.previous_start,
    }
    if user_id is not None:
        params["user_id"] = user_id
    if filters.providers:
        params["providers"] = list(filters.providers)
    if filters.models:
        params["models"] = list(filters.models)
    if filters.statuses:
        params["statuses"] = list(filters.statuses)
    params.update(extra)
    return params


def _text(sql: str, params: Mapping[str, Any], **columns: Any) -> TextClause:
    """A text() statement whose parameters carry the column types (UUIDs and UTC timestamps are
    stored differently by SQLite) and whose list parameters expand to ``IN (...)``."""
    binds: list[Any] = []
    for name in params:
        if f":{name}" not in sql:
            continue
        if name in ("start", "end", "prev_start"):
            binds.append(bindparam(name, type_=UTCDateTime()))
        elif name == "user_id" or name == "run_id":
            binds.append(bindparam(name, type_=Uuid()))
        elif name in ("providers", "models", "statuses"):
            binds.append(bindparam(name, expanding=True))
    stmt = text(sql).bindparams(*binds)
    return stmt.columns(**columns) if columns else stmt  # type: ignore[return-value]


def _aggregate_sql(
    dialect: str, *, keys: Sequence[tuple[str, str]], where: str, percentiles: bool, order_by: str
) -> str:
    """``SELECT keys, sums[, percentiles] FROM agent_runs r WHERE … GROUP BY keys ORDER BY …``."""
    key_select = "".join(f"{expr} AS {alias}, " for expr, alias in keys)
    aliases = ", ".join(alias for _, alias in keys)
    group_by = f"GROUP BY {aliases}" if keys else ""
    if dialect == "postgresql" or not percentiles:
        pct = _PG_PERCENTILES if percentiles else ""
        return (
            f"SELECT {key_select}{_SUMS}{pct}\nFROM agent_runs r\nWHERE {where}\n"
            f"{group_by}\nORDER BY {order_by}"
        )
    partition = f"PARTITION BY {aliases}" if keys else ""
    pct = "".join(
        f",\n    {_sqlite_percentile(c, pre, p)} AS {name}"
        for name, (c, pre, p) in _PERCENTILE_COLUMNS.items()
    )
    return f"""
WITH base AS (
    SELECT {key_select}r.input_tokens, r.output_tokens, r.cost_usd, r.status, r.fallback_from,
           r.cached_input_tokens, r.cache_write_tokens,
           CASE WHEN r.status = 'ok' THEN r.latency_ms END AS latency_ms, r.ttft_ms
    FROM agent_runs r WHERE {where}
), ranked AS (
    SELECT b.*,
        ROW_NUMBER() OVER (PARTITION_CLAUSE ORDER BY b.latency_ms IS NULL, b.latency_ms) - 1 AS lat_i,
        COUNT(b.latency_ms) OVER (PARTITION_CLAUSE) AS lat_n,
        ROW_NUMBER() OVER (PARTITION_CLAUSE ORDER BY b.ttft_ms IS NULL, b.ttft_ms) - 1 AS ttft_i,
        COUNT(b.ttft_ms) OVER (PARTITION_CLAUSE) AS ttft_n
    FROM base b
)
SELECT {aliases}{", " if keys else ""}{_SUMS}{pct}
FROM ranked r
{group_by}
ORDER BY {order_by}""".replace("PARTITION_CLAUSE", partition)


# --------------------------------------------------------------------------------------------
# result shaping
# --------------------------------------------------------------------------------------------


def _frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def _finish(df: pd.DataFrame, *, bucket: bool = False, percentiles: bool = False) -> pd.DataFrame:
    """Types the aggregate columns (ints, float cost, float percentiles) and adds the rates."""
    if bucket:
        df["bucket"] = pd.to_datetime(df["bucket"], utc=True)
    for name in ("runs", "input_tokens", "output_tokens", "errors", "fallbacks", "cache_tokens", "unknown_cost_runs"):
        if name in df:
            df[name] = df[name].astype("int64")
    if "cost_usd" in df:
        df["cost_usd"] = df["cost_usd"].astype("float64")
    if "runs" in df and "errors" in df:
        runs = df["runs"].where(df["runs"] > 0)
        df["error_rate"] = (df["errors"] / runs).astype("float64")
        df["fallback_rate"] = (df["fallbacks"] / runs).astype("float64")
    if percentiles:
        for name in _PCT_NAMES:
            df[name] = pd.to_numeric(df[name], errors="coerce").astype("float64")
    return df


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _kpis_from_row(row: Mapping[str, Any] | None) -> Kpis:
    if row is None:
        return Kpis()
    return Kpis(
        runs=int(row["runs"]),
        input_tokens=int(row["input_tokens"]),
        output_tokens=int(row["output_tokens"]),
        cost_usd=float(row["cost_usd"] or 0),
        errors=int(row["errors"] or 0),
        fallbacks=int(row["fallbacks"] or 0),
        cache_tokens=int(row["cache_tokens"] or 0),
        unknown_cost_runs=int(row["unknown_cost_runs"] or 0),
        latency_p50_ms=_opt_float(row["latency_p50"]),
        latency_p95_ms=_opt_float(row["latency_p95"]),
        ttft_p50_ms=_opt_float(row["ttft_p50"]),
        ttft_p95_ms=_opt_float(row["ttft_p95"]),
    )


def _comparison(rows: Sequence[Any]) -> KpiComparison:
    by_period = {row["period"]: row for row in rows}
    return KpiComparison(_kpis_from_row(by_period.get("current")), _kpis_from_row(by_period.get("previous")))


def _check_granularity(granularity: str) -> Granularity:
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}")
    return granularity  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# queries (each takes an open session; user_id None = all users, only for the SQLite admin path)
# --------------------------------------------------------------------------------------------


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _kpis(session: Session, filters: Filters, user_id: uuid.UUID | None) -> KpiComparison:
    sql = _aggregate_sql(
        _dialect(session),
        keys=[("CASE WHEN r.created_at >= :start THEN 'current' ELSE 'previous' END", "period")],
        where=_where(filters, scoped=user_id is not None, lower="prev_start"),
        percentiles=True,
        order_by="period",
    )
    params = _params(filters, user_id)
    rows = session.execute(_text(sql, params), params).mappings().all()
    return _comparison(rows)


def _series(
    session: Session, filters: Filters, user_id: uuid.UUID | None, granularity: Granularity
) -> pd.DataFrame:
    dialect = _dialect(session)
    sql = _aggregate_sql(
        dialect,
        keys=[(_BUCKET[dialect][granularity], "bucket"), ("r.provider", "provider")],
        where=_where(filters, scoped=user_id is not None),
        percentiles=False,
        order_by="bucket, provider",
    )
    params = _params(filters, user_id)
    rows = session.execute(_text(sql, params), params).all()
    return _finish(_frame(rows, ["bucket", "provider", *_SUM_NAMES]), bucket=True)


def _quality(
    session: Session, filters: Filters, user_id: uuid.UUID | None, granularity: Granularity
) -> pd.DataFrame:
    dialect = _dialect(session)
    sql = _aggregate_sql(
        dialect,
        keys=[(_BUCKET[dialect][granularity], "bucket")],
        where=_where(filters, scoped=user_id is not None),
        percentiles=True,
        order_by="bucket",
    )
    params = _params(filters, user_id)
    rows = session.execute(_text(sql, params), params).all()
    return _finish(_frame(rows, ["bucket", *_SUM_NAMES, *_PCT_NAMES]), bucket=True, percentiles=True)


def _by_model(session: Session, filters: Filters, user_id: uuid.UUID | None) -> pd.DataFrame:
    sql = _aggregate_sql(
        _dialect(session),
        keys=[("r.provider", "provider"), ("r.model", "model")],
        where=_where(filters, scoped=user_id is not None),
        percentiles=True,
        order_by="cost_usd DESC, runs DESC, provider, model",
    )
    params = _params(filters, user_id)
    rows = session.execute(_text(sql, params), params).all()
    return _finish(_frame(rows, ["provider", "model", *_SUM_NAMES, *_PCT_NAMES]), percentiles=True)


def _top_conversations(session: Session, filters: Filters, user_id: uuid.UUID, limit: int) -> pd.DataFrame:
    sql = f"""
SELECT c.id AS conversation_id, c.title AS title, COUNT(*) AS runs,
       COALESCE(SUM(r.input_tokens), 0) + COALESCE(SUM(r.output_tokens), 0)
       + COALESCE(SUM(COALESCE(r.cached_input_tokens, 0) + COALESCE(r.cache_write_tokens, 0)), 0) AS tokens,
       COALESCE(SUM(r.cost_usd), 0) AS cost_usd, MAX(r.created_at) AS last_run_at
FROM agent_runs r JOIN conversations c ON c.id = r.conversation_id AND c.user_id = :user_id
WHERE {_where(filters, scoped=True)}
GROUP BY c.id, c.title
ORDER BY cost_usd DESC, runs DESC, c.id
LIMIT :limit"""
    params = _params(filters, user_id, limit=limit)
    stmt = _text(
        sql,
        params,
        conversation_id=Uuid(),
        title=None,
        runs=None,
        tokens=None,
        cost_usd=None,
        last_run_at=UTCDateTime(),
    )
    rows = session.execute(stmt, params).all()
    df = _frame(rows, ["conversation_id", "title", "runs", "tokens", "cost_usd", "last_run_at"])
    df["runs"] = df["runs"].astype("int64")
    df["tokens"] = df["tokens"].astype("int64")
    df["cost_usd"] = df["cost_usd"].astype("float64")
    df["last_run_at"] = pd.to_datetime(df["last_run_at"], utc=True)
    return df


# --------------------------------------------------------------------------------------------
# public API: one user's figures
# --------------------------------------------------------------------------------------------


def load_dashboard(
    *,
    user_id: uuid.UUID,
    filters: Filters,
    granularity: Granularity = "day",
    top: int = 10,
    engine: Engine | None = None,
) -> Dashboard:
    """Every figure of the analytics page for ``user_id``: five aggregate queries, one transaction."""
    granularity = _check_granularity(granularity)
    with user_session(user_id, engine=engine) as session:
        return Dashboard(
            filters=filters,
            granularity=granularity,
            kpis=_kpis(session, filters, user_id),
            series=_series(session, filters, user_id, granularity),
            quality=_quality(session, filters, user_id, granularity),
            by_model=_by_model(session, filters, user_id),
            top_conversations=_top_conversations(session, filters, user_id, top),
        )


def kpis(*, user_id: uuid.UUID, filters: Filters, engine: Engine | None = None) -> KpiComparison:
    """KPIs of the filtered period and of the previous one of equal length (one query)."""
    with user_session(user_id, engine=engine) as session:
        return _kpis(session, filters, user_id)


def filter_options(*, user_id: uuid.UUID, engine: Engine | None = None) -> FilterOptions:
    """The providers and models this user has runs with, and the date of their first run."""
    sql = "SELECT DISTINCT r.provider, r.model FROM agent_runs r WHERE r.user_id = :user_id"
    first = "SELECT MIN(r.created_at) AS first FROM agent_runs r WHERE r.user_id = :user_id"
    params = {"user_id": user_id}
    with user_session(user_id, engine=engine) as session:
        pairs = session.execute(_text(sql, params), params).all()
        first_at = session.execute(_text(first, params, first=UTCDateTime()), params).scalar_one()
    return FilterOptions(
        providers=_clean([p for p, _ in pairs if p]),
        models=_clean([m for _, m in pairs if m]),
        first_run_at=first_at,
    )


_RUN_COLUMNS = (
    "id", "created_at", "conversation", "agent", "provider", "model", "status", "input_tokens",
    "output_tokens", "cost_usd", "ttft_ms", "latency_ms", "fallback_from", "error_code",
)  # fmt: skip


def recent_runs(
    *,
    user_id: uuid.UUID,
    filters: Filters,
    page: int = 0,
    page_size: int = 50,
    engine: Engine | None = None,
) -> RunsPage:
    """Runs newest first, ``page_size`` at a time (``page`` 0 is the newest); no message content."""
    if page < 0 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page must be >= 0 and page_size between 1 and {MAX_PAGE_SIZE}")
    sql = f"""
SELECT r.id, r.created_at, c.title AS conversation, r.agent, r.provider, r.model, r.status,
       r.input_tokens, r.output_tokens, r.cost_usd, r.ttft_ms, r.latency_ms, r.fallback_from, r.error_code
FROM agent_runs r LEFT JOIN conversations c ON c.id = r.conversation_id AND c.user_id = :user_id
WHERE {_where(filters, scoped=True)}
ORDER BY r.created_at DESC, r.id DESC
LIMIT :limit OFFSET :offset"""
    params = _params(filters, user_id, limit=page_size + 1, offset=page * page_size)
    typed: dict[str, Any] = {name: None for name in _RUN_COLUMNS}
    typed.update(id=Uuid(), created_at=UTCDateTime())
    with user_session(user_id, engine=engine) as session:
        rows = session.execute(_text(sql, params, **typed), params).all()
    df = _frame(rows[:page_size], _RUN_COLUMNS)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    df["cost_usd"] = pd.to_numeric(df["cost_usd"], errors="coerce").astype("float64")
    for name in ("input_tokens", "output_tokens", "ttft_ms", "latency_ms"):
        df[name] = pd.to_numeric(df[name], errors="coerce").astype("Int64")
    return RunsPage(rows=df, page=page, page_size=page_size, has_more=len(rows) > page_size)


def run_detail(*, user_id: uuid.UUID, run_id: uuid.UUID, engine: Engine | None = None) -> RunDetail:
    """One of the user's own runs with its message and answer; ``NotFound`` for anyone else's."""
    sql = """
SELECT r.id, r.conversation_id, c.title AS conversation_title, r.agent, r.created_at, r.status,
       r.provider, r.model, r.fallback_from, r.input_tokens, r.output_tokens, r.cached_input_tokens,
       r.cache_write_tokens, r.cost_usd, r.ttft_ms, r.latency_ms, r.prompt_sha256, r.atom_versions,
       r.request_id, r.error_code, r.user_message, r.output
FROM agent_runs r LEFT JOIN conversations c ON c.id = r.conversation_id AND c.user_id = :user_id
WHERE r.id = :run_id AND r.user_id = :user_id"""
    params = {"user_id": user_id, "run_id": run_id}
    typed: dict[str, Any] = {f.name: None for f in fields(RunDetail)}
    typed.update(id=Uuid(), conversation_id=Uuid(), created_at=UTCDateTime(), atom_versions=JSONType)
    with user_session(user_id, engine=engine) as session:
        row = session.execute(_text(sql, params, **typed), params).mappings().first()
    if row is None:
        raise NotFound("run not found")
    values = dict(row)
    values["conversation_title"] = values["conversation_title"] or ""
    cost = values["cost_usd"]
    values["cost_usd"] = None if cost is None else Decimal(str(cost))
    return RunDetail(**values)


def project_month_cost(*, cost_month_usd: Decimal, now: datetime | None = None) -> Decimal:
    """This month's cost extrapolated to the end of the month at the pace so far (UTC)."""
    now = _utc(now or datetime.now(UTC), "now")
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    days = calendar.monthrange(now.year, now.month)[1]
    elapsed = (now - month_start).total_seconds()
    if elapsed <= 0:
        return cost_month_usd
    total = days * 86_400
    return (cost_month_usd * Decimal(total) / Decimal(elapsed)).quantize(Decimal("0.0001"))


# --------------------------------------------------------------------------------------------
# public API: administrators (aggregates across users; never content)
# --------------------------------------------------------------------------------------------


@contextmanager
def _admin_errors() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "42501":
            raise AdminOnly("administrator privileges required") from None
        raise


def _pg_admin_params(filters: Filters, **extra: Any) -> dict[str, Any]:
    return {
        "start": filters.start,
        "end": filters.end,
        "prev_start": filters.previous_start,
        "providers": list(filters.providers) or None,
        "models": list(filters.models) or None,
        "statuses": list(filters.statuses) or None,
        **extra,
    }


_PG_FILTER_ARGS = (
    "CAST(:start AS timestamptz), CAST(:end AS timestamptz), CAST(:providers AS text[]), "
    "CAST(:models AS text[]), CAST(:statuses AS text[])"
)


def _pg_call(session: Session, sql: str, params: dict[str, Any]) -> list[Any]:
    stmt = text(sql).bindparams(
        *(bindparam(n, type_=UTCDateTime()) for n in ("start", "end", "prev_start") if f":{n}" in sql)
    )
    return list(session.execute(stmt, params).mappings().all())


def _pg_admin(session: Session, filters: Filters, granularity: Granularity) -> AdminDashboard:
    params = _pg_admin_params(filters, granularity=granularity)
    rows = _pg_call(
        session,
        "SELECT * FROM app.analytics_admin_dashboard(CAST(:prev_start AS timestamptz), "
        f"CAST(:granularity AS text), {_PG_FILTER_ARGS})",
        params,
    )
    by_figure: dict[str, list[Any]] = {"kpis": [], "series": [], "quality": [], "usage": []}
    for row in rows:  # ordered by the function: series by bucket, provider; usage by cost, runs
        by_figure[row["figure"]].append(row)
    series, quality, usage = by_figure["series"], by_figure["quality"], by_figure["usage"]
    user_cols = ["user_id", "email", *_SUM_NAMES]
    model_cols = ["user_id", "email", "provider", "model", *_SUM_NAMES]
    by_user: dict[uuid.UUID, list[Any]] = {}  # per user = sum of their user x model rows (exact:
    for r in usage:  # integers and Decimal), ordered as the SQL path: cost, runs desc, then email
        total = by_user.setdefault(r["user_id"], [r["user_id"], r["email"], *([0] * len(_SUM_NAMES))])
        for i, name in enumerate(_SUM_NAMES, start=2):
            total[i] += r[name]
    user_rows = sorted(by_user.values(), key=lambda t: (-t[5], -t[2], t[1]))
    return AdminDashboard(
        filters=filters,
        granularity=granularity,
        kpis=_comparison(by_figure["kpis"]),
        series=_finish(
            _frame(
                [[r[c] for c in ("bucket", "provider", *_SUM_NAMES)] for r in series],
                ["bucket", "provider", *_SUM_NAMES],
            ),
            bucket=True,
        ),
        quality=_finish(
            _frame(
                [[r[c] for c in ("bucket", *_SUM_NAMES, *_PCT_NAMES)] for r in quality],
                ["bucket", *_SUM_NAMES, *_PCT_NAMES],
            ),
            bucket=True,
            percentiles=True,
        ),
        by_user=_finish(_frame(user_rows, user_cols)),
        by_user_model=_finish(_frame([[r[c] for c in model_cols] for r in usage], model_cols)),
    )


def _sqlite_usage(session: Session, filters: Filters, *, per_model: bool) -> pd.DataFrame:
    keys = "r.user_id, u.email" + (", r.provider, r.model" if per_model else "")
    sql = f"""
SELECT {keys}, {_SUMS}
FROM agent_runs r JOIN users u ON u.id = r.user_id
WHERE {_where(filters, scoped=False)}
GROUP BY {keys}
ORDER BY cost_usd DESC, runs DESC, u.email{", r.provider, r.model" if per_model else ""}"""
    params = _params(filters, None)
    rows = session.execute(_text(sql, params), params).all()
    cols = ["user_id", "email", *(["provider", "model"] if per_model else []), *_SUM_NAMES]
    df = _frame(rows, cols)
    df["user_id"] = [uuid.UUID(hex=str(v)) for v in df["user_id"]]
    return _finish(df)


def _sqlite_is_admin(session: Session, user_id: uuid.UUID) -> bool:
    params = {"user_id": user_id}
    value = session.execute(_text("SELECT is_admin FROM users WHERE id = :user_id", params), params).scalar()
    return bool(value)


def load_admin_dashboard(
    *, admin_id: uuid.UUID, filters: Filters, granularity: Granularity = "day", engine: Engine | None = None
) -> AdminDashboard:
    """Figures across all users, per user and per user x model; ``AdminOnly`` for non-admins."""
    granularity = _check_granularity(granularity)
    engine = engine or get_engine()
    if engine.dialect.name == "postgresql":
        with _admin_errors(), user_session(admin_id, engine=engine) as session:
            return _pg_admin(session, filters, granularity)
    with user_session(admin_id, engine=engine) as session:
        if not _sqlite_is_admin(session, admin_id):
            raise AdminOnly("administrator privileges required")
    with system_session(engine=engine) as session:
        return AdminDashboard(
            filters=filters,
            granularity=granularity,
            kpis=_kpis(session, filters, None),
            series=_series(session, filters, None, granularity),
            quality=_quality(session, filters, None, granularity),
            by_user=_sqlite_usage(session, filters, per_model=False),
            by_user_model=_sqlite_usage(session, filters, per_model=True),
        )
