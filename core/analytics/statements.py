"""The views of the analytics figures, and the one SQL statement that computes a set of them.

A **view** groups runs by some keys (bucket, provider, model, user) and computes figures from
``core.analytics.figures`` for each group. A page load asks for several views at once:
``figures_statement`` builds one ``UNION ALL`` statement of them (on PostgreSQL its parts can run
as one Parallel Append), each row tagged with its view (``figure``) and period (``current`` or
``previous``), every other column NULL where a view does not have it. The same statement serves
the user dashboard (bound parameters, scoped to the user), the administrators' dashboard on SQLite
and, compiled with the function's own parameters, the PostgreSQL admin function.

Besides the time buckets (``figures.bucket``), percentiles are where the dialects differ, all in
``_part`` and ``_sqlite_percentiles`` below: ``percentile_cont`` on PostgreSQL; on SQLite (no
ordered-set aggregates) a window-ranked CTE picks the two neighbouring values and interpolates as
``percentile_cont`` does: position ``h = (n - 1) * p``, ``v[floor h] + (h - floor h) * (v[floor h +
1] - v[floor h])``, NULL values ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.sql.expression import FromClause, TableClause
from sqlalchemy.types import TypeEngine

from core.analytics.figures import (
    PERCENTILES,
    SUMS,
    VERSION_SUMS,
    Expression,
    Percentile,
    Runs,
    Sum,
    bucket,
    columns_read,
    sql,
)
from core.analytics.filters import Filters, Granularity
from models import AgentRun, User
from models.types import JSONType, UTCDateTime

Period = Literal["current", "previous"]
AGENT_RUNS: TableClause = AgentRun.__table__  # type: ignore[attr-defined]
USERS: TableClause = User.__table__  # type: ignore[attr-defined]


LISTS = {"providers": "provider", "models": "model", "statuses": "status"}  # filter list -> its column


@dataclass(frozen=True)
class Bounds:
    """Where the filter values come from in SQL: bound parameters of a query (``bound``), or the
    parameters ``$n`` of the admin function, whose lists are arrays that mean "any" when NULL."""

    prev_start: Expression
    start: Expression
    end: Expression
    lists: tuple[tuple[str, Expression], ...]  # (name in LISTS, parameter)
    granularity: Granularity | Expression
    user_id: Expression | None = None
    null_list_means_any: bool = False

    @classmethod
    def bound(cls, *, lists: tuple[str, ...] = (), granularity: Granularity = "day", scoped: bool = False) -> Bounds:
        """``:prev_start``, ``:start``, ``:end``, an expanding ``:<name>`` per list that filters, and
        ``:user_id`` when ``scoped``; ``query_parameters`` gives their values."""
        return cls(
            prev_start=bindparam("prev_start", type_=UTCDateTime()),
            start=bindparam("start", type_=UTCDateTime()),
            end=bindparam("end", type_=UTCDateTime()),
            lists=tuple((name, bindparam(name, expanding=True)) for name in lists),
            granularity=granularity,
            user_id=bindparam("user_id", type_=Uuid()) if scoped else None,
        )


def filtering_lists(filters: Filters) -> tuple[str, ...]:
    """The value lists of ``filters`` that are not empty (an empty one means "any")."""
    return tuple(name for name in LISTS if getattr(filters, name))


def query_parameters(filters: Filters, user_id: uuid.UUID | None = None, **extra: Any) -> dict[str, Any]:
    """The values of ``Bounds.bound`` parameters for ``filters`` (and ``user_id``, and ``extra``)."""
    values: dict[str, Any] = {"prev_start": filters.previous_start, "start": filters.start, "end": filters.end}
    values.update({name: list(getattr(filters, name)) for name in filtering_lists(filters)})
    if user_id is not None:
        values["user_id"] = user_id
    return values | extra


# Grouping keys: how each is computed from a run, and its SQL type in the combined statement.
KEY_TYPES: dict[str, TypeEngine[Any]] = {
    "bucket": DateTime(timezone=True),
    "user_id": Uuid(),
    "provider": Text(),
    "model": Text(),
    "prompt_sha256": Text(),
    "atom_versions": JSONType,
}


def _key(name: str, r: Runs, bounds: Bounds, dialect: str) -> Expression:
    if name == "bucket":
        return bucket(r.created_at, bounds.granularity, dialect)
    column: Expression = getattr(r, name)
    return column


@dataclass(frozen=True)
class View:
    """Figures of runs grouped by ``keys``; ``order`` sorts its table: (column, ascending) pairs."""

    name: str
    keys: tuple[str, ...] = ()
    sums: tuple[Sum, ...] = SUMS
    percentiles: tuple[Percentile, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()


_BY_COST = (("cost_usd", False), ("runs", False))
KPIS = View("kpis", percentiles=PERCENTILES)
SERIES = View("series", ("bucket", "provider"), order=(("bucket", True), ("provider", True)))
QUALITY = View("quality", ("bucket",), percentiles=PERCENTILES, order=(("bucket", True),))
BY_MODEL = View(
    "by_model", ("provider", "model"), percentiles=PERCENTILES, order=(*_BY_COST, ("provider", True), ("model", True))
)
USAGE = View(
    "usage",
    ("user_id", "provider", "model"),
    order=(*_BY_COST, ("email", True), ("provider", True), ("model", True)),
)
# per prompt and the atom versions that made it (one prompt has one atom set unless an atom's version
# changed without its text); ``core.analytics.versions`` adds these groups up per prompt and per atom
PROMPT_VERSIONS = View(
    "prompt_versions",
    ("prompt_sha256", "atom_versions"),
    sums=(*(s for s in SUMS if s.name in ("runs", "input_tokens", "cache_tokens", "cost_usd", "errors",
                                          "unknown_cost_runs", "interrupted")), *VERSION_SUMS),
)


@dataclass(frozen=True)
class Part:
    view: View
    period: Period = "current"


def runs_filter(r: Runs, bounds: Bounds, period: Period = "current") -> Expression:
    """The runs a view counts: ``start <= created_at < end`` of the period, the value lists, the user."""
    start, end = (bounds.start, bounds.end) if period == "current" else (bounds.prev_start, bounds.start)
    conditions = [r.created_at >= start, r.created_at < end]
    if bounds.user_id is not None:
        conditions.insert(0, r.user_id == bounds.user_id)
    for name, values in bounds.lists:
        column = getattr(r, LISTS[name])
        if bounds.null_list_means_any:
            conditions.append(or_(values.is_(None), column == any_(values)))
        else:
            conditions.append(column.in_(values))
    return and_(*conditions)


def result_columns(parts: Sequence[Part], *, email: bool) -> list[tuple[str, TypeEngine[Any]]]:
    """The name and SQL type of each column of the combined statement of ``parts``, in order: the
    tags (figure, period), the keys (with ``email`` after ``user_id`` if asked), sums, percentiles."""
    views = [p.view for p in parts]
    keys = [k for k in KEY_TYPES if any(k in v.keys for v in views)]
    out: list[tuple[str, TypeEngine[Any]]] = [("figure", Text()), ("period", Text())]
    for k in keys:
        out.append((k, KEY_TYPES[k]))
        if k == "user_id" and email:
            out.append(("email", Text()))
    seen: set[str] = set()
    figures: list[Sum | Percentile] = [*(s for v in views for s in v.sums), *(p for v in views for p in v.percentiles)]
    for figure in figures:
        if figure.name not in seen:
            seen.add(figure.name)
            out.append((figure.name, figure.type_))
    return out


def _typed(value: Expression | None, type_: TypeEngine[Any], dialect: str) -> Expression:
    """PostgreSQL: every column of every part cast to one type (UNION and function results need it)."""
    if dialect == "sqlite":
        return null() if value is None else value
    return cast(null() if value is None else value, type_)


def _sqlite_percentiles(
    part: Part, r: FromClause, keys: dict[str, Expression], where: Expression
) -> tuple[FromClause, dict[str, Expression], dict[str, Expression]]:
    """SQLite: the part's runs ranked per group by each measure (CTEs), and the interpolation."""
    view, label = part.view, f"{part.view.name}_{part.period}"
    measures = list(dict.fromkeys(p.measure for p in view.percentiles))
    read = columns_read(*(s.of(AGENT_RUNS.c) for s in view.sums))
    base = (
        select(
            *(k.label(name) for name, k in keys.items()),
            *(r.c[c] for c in sorted(read)),
            *(m.of(r.c).label(m.name) for m in measures),
        )
        .where(where)
        .cte(f"{label}_base")
    )
    partition = [base.c[k] for k in keys] or None
    ranked = select(
        base,
        *(
            col
            for m in measures
            for col in (
                (
                    func.row_number().over(partition_by=partition, order_by=(base.c[m.name].is_(None), base.c[m.name]))
                    - sql("1")
                ).label(f"{m.name}_i"),
                func.count(base.c[m.name]).over(partition_by=partition).label(f"{m.name}_n"),
            )
        ),
    ).cte(f"{label}_ranked")
    values: dict[str, Expression] = {}
    for p in view.percentiles:
        v, i, n = ranked.c[p.measure.name], ranked.c[f"{p.measure.name}_i"], ranked.c[f"{p.measure.name}_n"]
        fraction = sql(repr(p.fraction))
        floor = cast((n - sql("1")) * fraction, Integer)
        lo = func.max(case((i == floor, v)))
        hi = func.max(case((i == floor + sql("1"), v)))
        position = (func.max(n) - sql("1")) * fraction
        values[p.name] = lo + (position - cast(position, Integer)) * (func.coalesce(hi, lo) - lo)
    return ranked, {k: ranked.c[k] for k in keys}, values


def _part(
    part: Part,
    r: FromClause,
    columns: list[tuple[str, TypeEngine[Any]]],
    *,
    bounds: Bounds,
    dialect: str,
) -> Select[Any]:
    view = part.view
    runs = runs_filter(r.c, bounds, part.period)
    keys = {k: _key(k, r.c, bounds, dialect) for k in view.keys}
    source: FromClause = r
    where: Expression | None = runs
    if view.percentiles and dialect == "sqlite":  # the filter is applied inside the ranked CTE
        source, keys, percentiles = _sqlite_percentiles(part, r, keys, runs)
        where = None
    else:
        percentiles = {
            p.name: func.percentile_cont(sql(repr(p.fraction))).within_group(p.measure.of(r.c))
            for p in view.percentiles
        }
    values: dict[str, Expression] = {
        "figure": sql(f"'{view.name}'"),
        "period": sql(f"'{part.period}'"),
        **keys,
        **{s.name: s.of(source.c) for s in view.sums},
        **percentiles,
    }
    stmt = select(*(_typed(values.get(name), type_, dialect).label(name) for name, type_ in columns))
    stmt = stmt.select_from(source).group_by(*keys.values())
    return stmt if where is None else stmt.where(where)


def figures_statement(
    parts: Sequence[Part],
    *,
    bounds: Bounds,
    dialect: str,
    runs: TableClause = AGENT_RUNS,
    users: TableClause | None = None,
) -> Select[Any]:
    """One statement computing every part, for one user's runs if ``bounds`` has a ``user_id``.

    With ``users``, rows that carry a ``user_id`` also carry that user's ``email``.
    """
    columns = result_columns(parts, email=False)
    r = runs.alias("r")
    selects = [_part(p, r, columns, bounds=bounds, dialect=dialect) for p in parts]
    combined = (union_all(*selects) if len(selects) > 1 else selects[0]).subquery("f")
    if users is None or "user_id" not in combined.c:
        return select(*(combined.c[name] for name, _ in columns))
    u = users.alias("u")
    out = [
        _typed(u.c.email, Text(), dialect).label("email") if name == "email" else combined.c[name]
        for name, _ in result_columns(parts, email=True)
    ]
    return select(*out).select_from(combined.outerjoin(u, u.c.id == combined.c.user_id))


@cache
def bound_figures_statement(
    parts: tuple[Part, ...],
    *,
    dialect: str,
    granularity: Granularity,
    lists: tuple[str, ...],
    scoped: bool,
    users: TableClause | None = None,
) -> Select[Any]:
    """``figures_statement`` with bound parameters (``query_parameters``), built once per shape."""
    bounds = Bounds.bound(lists=lists, granularity=granularity, scoped=scoped)
    return figures_statement(parts, bounds=bounds, dialect=dialect, users=users)
