"""One user's runs: a page of them without content, and one run in full (its owner only)."""

from __future__ import annotations

import uuid
from dataclasses import fields
from decimal import Decimal
from functools import cache
from typing import Any

import pandas as pd
from sqlalchemy import Select, bindparam, select
from sqlalchemy.engine import Engine

from core.analytics.dashboard import CONVERSATIONS
from core.analytics.filters import Filters
from core.analytics.results import RunDetail, RunsPage
from core.analytics.statements import AGENT_RUNS, Bounds, filtering_lists, query_parameters, runs_filter
from core.db import NotFound, user_session

MAX_PAGE_SIZE = 500
RUN_COLUMNS = (
    "id", "created_at", "conversation", "agent", "provider", "model", "status", "input_tokens",
    "output_tokens", "cost_usd", "ttft_ms", "latency_ms", "fallback_from", "error_code",
)  # fmt: skip


@cache
def _recent_runs_statement(lists: tuple[str, ...]) -> Select[Any]:
    r, c = AGENT_RUNS.alias("r"), CONVERSATIONS.alias("c")
    bounds = Bounds.bound(lists=lists, scoped=True)
    columns = [c.c.title.label("conversation") if name == "conversation" else r.c[name] for name in RUN_COLUMNS]
    return (
        select(*columns)
        .select_from(r.outerjoin(c, (c.c.id == r.c.conversation_id) & (c.c.user_id == bounds.user_id)))
        .where(runs_filter(r.c, bounds))
        .order_by(r.c.created_at.desc(), r.c.id.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


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
    statement = _recent_runs_statement(filtering_lists(filters))
    parameters = query_parameters(filters, user_id, limit=page_size + 1, offset=page * page_size)
    with user_session(user_id, engine=engine) as session:
        rows = session.execute(statement, parameters).all()
    df = pd.DataFrame([tuple(row) for row in rows[:page_size]], columns=list(RUN_COLUMNS))
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True)
    df["cost_usd"] = pd.to_numeric(df["cost_usd"], errors="coerce").astype("float64")
    for name in ("input_tokens", "output_tokens", "ttft_ms", "latency_ms"):
        df[name] = pd.to_numeric(df[name], errors="coerce").astype("Int64")
    return RunsPage(rows=df, page=page, page_size=page_size, has_more=len(rows) > page_size)


def run_detail(*, user_id: uuid.UUID, run_id: uuid.UUID, engine: Engine | None = None) -> RunDetail:
    """One of the user's own runs with its message and answer; ``NotFound`` for anyone else's."""
    r, c = AGENT_RUNS.alias("r"), CONVERSATIONS.alias("c")
    columns = [
        c.c.title.label("conversation_title") if f.name == "conversation_title" else r.c[f.name]
        for f in fields(RunDetail)
    ]
    statement = (
        select(*columns)
        .select_from(r.outerjoin(c, (c.c.id == r.c.conversation_id) & (c.c.user_id == user_id)))
        .where(r.c.id == run_id, r.c.user_id == user_id)
    )
    with user_session(user_id, engine=engine) as session:
        row = session.execute(statement).mappings().first()
    if row is None:
        raise NotFound("run not found")
    values = dict(row)
    values["conversation_title"] = values["conversation_title"] or ""
    cost = values["cost_usd"]
    values["cost_usd"] = None if cost is None else Decimal(str(cost))
    return RunDetail(**values)
