"""What each analytics figure means: one definition per figure, read by every view on both databases.

A figure is a SQLAlchemy expression over the columns of ``agent_runs`` (``r``). The user dashboard,
the KPIs, the series, the per-model table and the administrators' dashboard (whose PostgreSQL
function is generated from these same expressions, see ``core.analytics.admin_function``) all
build their SQL from the definitions below; nothing else spells out a figure.

* **Sums** (per group of runs): runs; input, output and cache tokens (cache = cached input read +
  cache writes, which ``input_tokens`` excludes); cost (NULL as 0); errors (``status = 'error'``);
  fallbacks (answers, i.e. not ``error``, with ``fallback_from`` set: a run on which every provider
  failed fell back to nothing); runs of **unknown cost** (tokens reported, input or output, but no
  cost: a model missing from ``pricing.toml`` or an answer cut before the provider reported its
  output; the cost sum leaves them out and this count says how many there are).
* **Interruptions**: runs cut off after part of an answer (``status = 'interrupted'``), and the
  same by cause (``error_code``): ``process_stopped`` (the answering process died; closed by the
  sweep, ``core.run_leases``), ``shutdown`` (the process was stopped gracefully mid-answer),
  ``user_stop`` (``cancelled``: the user stopped it or left), ``cut_stream`` (any other code: the
  provider's stream broke or timed out). The four causes add up to the interruptions.
* **Percentiles** (``percentile_cont``: linear interpolation, NULLs ignored) of two per-run
  measures: the latency of a completed answer (``status = 'ok'``; a failed run's time to fail is
  not a latency) and the time to the first token (every run that had one).
* **Derived** in Python from the sums: tokens (input + cache + output, as the daily token quota
  counts them), error rate and fallback rate (over every run in the group; none without runs).
* **Prompt versions** (``VERSION_SUMS``, what the runs of one prompt tell of it, beside some of the
  sums above, interruptions among them): completed answers (``status = 'ok'``); thumbs up and
  thumbs down (the user's ``feedback``); superseded runs (replaced by an edit or a regeneration:
  ``superseded_by`` set; retries of a failed answer are regenerations too); runs that reported input
  tokens; first and last use (``created_at``). Derived: the share of runs rated up, rated down,
  superseded and interrupted (over every run, as the other rates); the average input tokens (input
  + cache, as the quota
  counts them, over the runs that reported input); the cost per answer (the cost of every run of
  the version, failed, superseded and interrupted ones included, over its completed answers: what
  an answer really cost; runs of unknown cost are left out of the sum, as everywhere).
* **Time buckets**: UTC days, ISO weeks (from Monday) and months.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import pandas as pd
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    DateTime,
    Float,
    Integer,
    Numeric,
    and_,
    case,
    func,
    literal_column,
    or_,
)
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnClause
from sqlalchemy.types import TypeEngine

from core.analytics.filters import GRANULARITIES, Granularity

Runs = Any  # the column collection of agent_runs (``table.c``) or of a derived table with its names
Expression = ColumnElement[Any]


def sql(fragment: str) -> Expression:
    """A constant SQL fragment written here (never a value from outside)."""
    return literal_column(fragment)


@dataclass(frozen=True)
class Sum:
    """An aggregate over a group of runs; ``combine`` says how the values of disjoint groups add up
    to the value of their union (``sum``, or ``min``/``max`` for first and last times)."""

    name: str
    type_: TypeEngine[Any]
    of: Callable[[Runs], Expression]
    combine: str = "sum"


@dataclass(frozen=True)
class Measure:
    """A per-run value whose percentiles are figures; NULL where the run does not count."""

    name: str
    of: Callable[[Runs], Expression]


_FLOAT8 = Float()


@dataclass(frozen=True)
class Percentile:
    name: str
    measure: Measure
    fraction: float
    type_: TypeEngine[Any] = _FLOAT8


def _tokens_sum(column: Callable[[Runs], Expression]) -> Callable[[Runs], Expression]:
    return lambda r: func.coalesce(func.sum(column(r)), sql("0"))


# cause -> the error codes of an interrupted run that name it; "cut_stream" is every other code
INTERRUPTION_CAUSES: dict[str, tuple[str, ...]] = {
    "process_stopped": ("process_stopped",),
    "shutdown": ("shutdown",),
    "user_stop": ("cancelled",),
}
CUT_STREAM = "cut_stream"


def _interrupted(cause: str | None = None) -> Callable[[Runs], Expression]:
    """Interrupted runs (of one cause, when given)."""

    def count(r: Runs) -> Expression:
        condition: Expression = r.status == sql("'interrupted'")
        if cause == CUT_STREAM:
            named = [sql(f"'{c}'") for codes in INTERRUPTION_CAUSES.values() for c in codes]
            condition = and_(condition, or_(r.error_code.is_(None), r.error_code.not_in(named)))
        elif cause is not None:
            condition = and_(condition, r.error_code.in_([sql(f"'{c}'") for c in INTERRUPTION_CAUSES[cause]]))
        return func.count(case((condition, sql("1"))))

    return count


SUMS: tuple[Sum, ...] = (
    Sum("runs", BigInteger(), lambda r: func.count()),
    Sum("input_tokens", BigInteger(), _tokens_sum(lambda r: r.input_tokens)),
    Sum("output_tokens", BigInteger(), _tokens_sum(lambda r: r.output_tokens)),
    Sum("cost_usd", Numeric(), lambda r: func.coalesce(func.sum(r.cost_usd), sql("0"))),
    Sum("errors", BigInteger(), lambda r: func.count(case((r.status == sql("'error'"), sql("1"))))),
    Sum("fallbacks", BigInteger(), lambda r: func.count(case((r.status != sql("'error'"), r.fallback_from)))),
    Sum(
        "cache_tokens",
        BigInteger(),
        _tokens_sum(
            lambda r: func.coalesce(r.cached_input_tokens, sql("0")) + func.coalesce(r.cache_write_tokens, sql("0"))
        ),
    ),
    Sum(
        "unknown_cost_runs",
        BigInteger(),
        lambda r: func.count(
            case((and_(r.cost_usd.is_(None), or_(r.input_tokens.is_not(None), r.output_tokens.is_not(None))), sql("1")))
        ),
    ),
    Sum("interrupted", BigInteger(), _interrupted()),
    *(Sum(f"interrupted_{cause}", BigInteger(), _interrupted(cause)) for cause in (*INTERRUPTION_CAUSES, CUT_STREAM)),
)
SUM_NAMES = tuple(s.name for s in SUMS)


def _count_where(condition: Callable[[Runs], Expression]) -> Callable[[Runs], Expression]:
    return lambda r: func.count(case((condition(r), sql("1"))))


VERSION_SUMS: tuple[Sum, ...] = (
    Sum("answers", BigInteger(), _count_where(lambda r: r.status == sql("'ok'"))),
    Sum("thumbs_up", BigInteger(), _count_where(lambda r: r.feedback == sql("1"))),
    Sum("thumbs_down", BigInteger(), _count_where(lambda r: r.feedback == sql("-1"))),
    Sum("superseded", BigInteger(), lambda r: func.count(r.superseded_by)),
    Sum("input_runs", BigInteger(), lambda r: func.count(r.input_tokens)),
    Sum("first_used", DateTime(timezone=True), lambda r: func.min(r.created_at), combine="min"),
    Sum("last_used", DateTime(timezone=True), lambda r: func.max(r.created_at), combine="max"),
)

LATENCY = Measure("latency", lambda r: case((r.status == sql("'ok'"), r.latency_ms)))
TTFT = Measure("ttft", lambda r: r.ttft_ms)
PERCENTILES: tuple[Percentile, ...] = (
    Percentile("latency_p50", LATENCY, 0.5),
    Percentile("latency_p95", LATENCY, 0.95),
    Percentile("ttft_p50", TTFT, 0.5),
    Percentile("ttft_p95", TTFT, 0.95),
)
PERCENTILE_NAMES = tuple(p.name for p in PERCENTILES)
Figure = Sum | Percentile
FIGURES: tuple[Figure, ...] = (*SUMS, *VERSION_SUMS, *PERCENTILES)
TIMES = tuple(s.name for s in VERSION_SUMS if isinstance(s.type_, DateTime))  # UTC times, not numbers


def pandas_dtype(figure: Figure) -> str | None:
    """The dtype of a figure's column in the result tables (None: as the database returns it)."""
    if isinstance(figure.type_, Numeric):  # Float included; numeric sums of money become floats
        return "float64"
    if isinstance(figure.type_, Integer):
        return "int64"
    return None  # times (first and last use) are parsed as UTC by ``results.finish``


# ---- derived from the sums (scalars for one group, or pandas columns for many)
Value = TypeVar("Value", int, "pd.Series[Any]")
RATES = {  # rate -> the sum it divides by runs
    "error_rate": "errors",
    "fallback_rate": "fallbacks",
    "thumbs_up_rate": "thumbs_up",
    "thumbs_down_rate": "thumbs_down",
    "superseded_rate": "superseded",
    "interruption_rate": "interrupted",
}
# per-answer figures: name -> (numerator sums, the sum they divide by)
PER: dict[str, tuple[tuple[str, ...], str]] = {
    "avg_input_tokens": (("input_tokens", "cache_tokens"), "input_runs"),
    "cost_per_answer": (("cost_usd",), "answers"),
}


def total_tokens(input_tokens: Value, cache_tokens: Value, output_tokens: Value) -> Value:
    """Every token, as the daily token quota counts them: input, cache and output."""
    return input_tokens + cache_tokens + output_tokens


@overload
def rate(count: int, runs: int) -> float | None: ...
@overload
def rate(count: pd.Series[Any], runs: pd.Series[Any]) -> pd.Series[Any]: ...
def rate(count: Any, runs: Any) -> Any:
    """``count / runs`` over every run of the group; none (None or NaN) for a group without runs."""
    if isinstance(runs, pd.Series):
        return (count / runs.where(runs > 0)).astype("float64")
    return count / runs if runs else None


# ---- time buckets
_PG_BIN_ORIGIN = "timestamptz '2000-01-03 00:00:00+00'"  # a Monday, 00:00 UTC


def _pg_bucket(created_at: Expression, granularity: Granularity) -> Expression:
    if granularity == "month":
        return func.date_trunc(sql("'month'"), created_at, sql("'UTC'"))
    step = "interval '7 days'" if granularity == "week" else "interval '1 day'"
    return func.date_bin(sql(step), created_at, sql(_PG_BIN_ORIGIN))


def _sqlite_bucket(created_at: Expression, granularity: Granularity) -> Expression:
    # created_at is stored as naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff'
    if granularity == "month":
        return func.strftime(sql("'%Y-%m-01'"), created_at)
    if granularity == "week":  # the Monday of its ISO week
        return func.date(created_at, sql("'weekday 0'"), sql("'-6 days'"))
    return func.strftime(sql("'%Y-%m-%d'"), created_at)


def bucket(created_at: Expression, granularity: Granularity | Expression, dialect: str) -> Expression:
    """The UTC day, ISO week (Monday) or month a run belongs to.

    ``granularity`` is a value, or (PostgreSQL only) a SQL parameter: then a CASE over every
    granularity, which the planner folds to one branch for a known value.
    """
    if isinstance(granularity, str):
        return _sqlite_bucket(created_at, granularity) if dialect == "sqlite" else _pg_bucket(created_at, granularity)
    if dialect == "sqlite":
        raise ValueError("SQLite buckets need a known granularity")
    return case(*((granularity == sql(f"'{g}'"), _pg_bucket(created_at, g)) for g in GRANULARITIES))


def columns_read(*elements: visitors.ExternallyTraversible, table: str = "agent_runs") -> set[str]:
    """The columns of ``table`` (or of an alias of it) that SQL elements read."""
    names: set[str] = set()
    for element in elements:
        for node in visitors.iterate(element):
            if isinstance(node, ColumnClause) and node.table is not None:
                source = getattr(node.table, "element", node.table)
                if getattr(source, "name", None) == table:
                    names.add(node.name)
    return names
