"""One user's figures: the analytics page (KPIs, series, quality, per model, prompt versions, top
conversations), and the figures of their prompt versions alone (the prompt preview page).

Two walls: every query runs in ``user_session(user_id)`` (row-level security on PostgreSQL) *and*
filters ``agent_runs.user_id`` explicitly.
"""

from __future__ import annotations

import calendar
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import pandas as pd
from sqlalchemy import Select, bindparam, desc, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.analytics.figures import SUMS
from core.analytics.filters import Filters, Granularity, as_utc, check_granularity, distinct_sorted
from core.analytics.results import Dashboard, FigureRows, FilterOptions, KpiComparison, finish
from core.analytics.statements import (
    AGENT_RUNS,
    BY_MODEL,
    KPIS,
    PROMPT_VERSIONS,
    QUALITY,
    SERIES,
    Bounds,
    Part,
    bound_figures_statement,
    filtering_lists,
    query_parameters,
    runs_filter,
)
from core.analytics.versions import PromptVersions, versions_from
from core.db import user_session
from models import Conversation

CONVERSATIONS = Conversation.__table__  # type: ignore[attr-defined]
DASHBOARD_PARTS = (
    Part(KPIS), Part(KPIS, "previous"), Part(SERIES), Part(QUALITY), Part(BY_MODEL), Part(PROMPT_VERSIONS),
)  # fmt: skip
KPI_PARTS = (Part(KPIS), Part(KPIS, "previous"))
_TOP_SUMS = ("runs", "input_tokens", "output_tokens", "cache_tokens", "cost_usd")


def figure_rows(
    session: Session,
    parts: tuple[Part, ...],
    *,
    filters: Filters,
    granularity: Granularity = "day",
    user_id: uuid.UUID | None,
) -> FigureRows:
    """The parts' figures in one statement; ``user_id`` None leaves the user filter to the database
    (row-level security) or, in ``system_session``, counts every user."""
    statement = bound_figures_statement(
        parts,
        dialect=session.get_bind().dialect.name,
        granularity=granularity,
        lists=filtering_lists(filters),
        scoped=user_id is not None,
    )
    return FigureRows(session.execute(statement, query_parameters(filters, user_id)).mappings().all())


@cache
def _top_conversations_statement(lists: tuple[str, ...]) -> Select[Any]:
    r, c = AGENT_RUNS.alias("r"), CONVERSATIONS.alias("c")
    bounds = Bounds.bound(lists=lists, scoped=True)
    sums = [s.of(r.c).label(s.name) for s in SUMS if s.name in _TOP_SUMS]
    return (
        select(c.c.id.label("conversation_id"), c.c.title, *sums, func.max(r.c.created_at).label("last_run_at"))
        .select_from(r.join(c, (c.c.id == r.c.conversation_id) & (c.c.user_id == bounds.user_id)))
        .where(runs_filter(r.c, bounds))
        .group_by(c.c.id, c.c.title)
        .order_by(desc("cost_usd"), desc("runs"), c.c.id)
        .limit(bindparam("limit"))
    )


def _top_conversations(session: Session, filters: Filters, user_id: uuid.UUID, limit: int) -> pd.DataFrame:
    statement = _top_conversations_statement(filtering_lists(filters))
    result = session.execute(statement, query_parameters(filters, user_id, limit=limit))
    df = finish(pd.DataFrame([tuple(row) for row in result.all()], columns=list(result.keys())))  # adds tokens
    df["last_run_at"] = pd.to_datetime(df["last_run_at"], utc=True)
    return df[["conversation_id", "title", "runs", "tokens", "cost_usd", "last_run_at"]]


def load_dashboard(
    *,
    user_id: uuid.UUID,
    filters: Filters,
    granularity: Granularity = "day",
    top: int = 10,
    engine: Engine | None = None,
) -> Dashboard:
    """Every figure of the analytics page for ``user_id``: two queries in one transaction."""
    granularity = check_granularity(granularity)
    with user_session(user_id, engine=engine) as session:
        figures = figure_rows(session, DASHBOARD_PARTS, filters=filters, granularity=granularity, user_id=user_id)
        top_conversations = _top_conversations(session, filters, user_id, top)
    return Dashboard(
        filters=filters,
        granularity=granularity,
        kpis=figures.kpis(),
        series=figures.frame(SERIES),
        quality=figures.frame(QUALITY),
        by_model=figures.frame(BY_MODEL),
        prompt_versions=versions_from(figures),
        top_conversations=top_conversations,
    )


def prompt_versions(*, user_id: uuid.UUID, filters: Filters, engine: Engine | None = None) -> PromptVersions:
    """The figures of the user's prompt versions (per prompt and per atom version) in ``filters``."""
    with user_session(user_id, engine=engine) as session:
        figures = figure_rows(session, (Part(PROMPT_VERSIONS),), filters=filters, user_id=user_id)
    return versions_from(figures)


def kpis(*, user_id: uuid.UUID, filters: Filters, engine: Engine | None = None) -> KpiComparison:
    """KPIs of the filtered period and of the previous one of equal length (one query)."""
    with user_session(user_id, engine=engine) as session:
        return figure_rows(session, KPI_PARTS, filters=filters, user_id=user_id).kpis()


def filter_options(*, user_id: uuid.UUID, engine: Engine | None = None) -> FilterOptions:
    """The providers and models this user has runs with, and the date of their first run."""
    r = AGENT_RUNS.alias("r")
    pairs_query = select(r.c.provider, r.c.model).distinct().where(r.c.user_id == user_id)
    first_query = select(func.min(r.c.created_at)).where(r.c.user_id == user_id)
    with user_session(user_id, engine=engine) as session:
        pairs: list[Any] = list(session.execute(pairs_query).all())
        first_at = session.execute(first_query).scalar_one()
    return FilterOptions(
        providers=distinct_sorted([p for p, _ in pairs]),
        models=distinct_sorted([m for _, m in pairs]),
        first_run_at=first_at,
    )


def project_month_cost(*, cost_month_usd: Decimal, now: datetime | None = None) -> Decimal:
    """This month's cost extrapolated to the end of the month at the pace so far (UTC)."""
    now = as_utc(now or datetime.now(UTC), "now")
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    days = calendar.monthrange(now.year, now.month)[1]
    elapsed = (now - month_start).total_seconds()
    if elapsed <= 0:
        return cost_month_usd
    total = days * 86_400
    return (cost_month_usd * Decimal(total) / Decimal(elapsed)).quantize(Decimal("0.0001"))
