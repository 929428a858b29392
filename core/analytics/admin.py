"""The administrators' dashboard: the figures across all users, per user, per user x model and per
prompt version (per prompt and atom version: no user, no content).

Aggregates only: never message content, titles, prompts or request ids.

* **PostgreSQL**: ``advisor_app`` cannot see other users' runs (row-level security), so the figures
  come from the SECURITY DEFINER function ``app.analytics_admin_dashboard``, which checks that the
  caller is an administrator and returns the rows of the combined statement of ``ADMIN_PARTS``
  (generated from the figures: ``core.analytics.admin_function``).
* **SQLite** (no RLS): the same statement runs in ``system_session()`` after an ``is_admin`` check.

The per-user table is the sum of each user's per-model rows (exact for sums; the rates are derived
again from the summed counts), which saves a second grouping of every run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from core.analytics.figures import SUM_NAMES
from core.analytics.filters import Filters, Granularity, check_granularity
from core.analytics.results import AdminDashboard, FigureRows, finish
from core.analytics.statements import (
    KPIS,
    PROMPT_VERSIONS,
    QUALITY,
    SERIES,
    USAGE,
    USERS,
    Part,
    bound_figures_statement,
    filtering_lists,
    query_parameters,
)
from core.analytics.versions import versions_from
from core.db import get_engine, system_session, user_session
from models.types import UTCDateTime

ADMIN_PARTS = (
    Part(KPIS), Part(KPIS, "previous"), Part(SERIES), Part(QUALITY), Part(USAGE), Part(PROMPT_VERSIONS),
)  # fmt: skip
BY_USER_ORDER = (("cost_usd", False), ("runs", False), ("email", True))
_CALL = text(
    "SELECT * FROM app.analytics_admin_dashboard(:prev_start, CAST(:granularity AS text), :start, :end, "
    "CAST(:providers AS text[]), CAST(:models AS text[]), CAST(:statuses AS text[]))"
).bindparams(*(bindparam(name, type_=UTCDateTime()) for name in ("prev_start", "start", "end")))


class AdminOnly(PermissionError):
    """The caller is not an administrator (raised for every admin figure)."""


def function_arguments(filters: Filters, granularity: Granularity) -> dict[str, Any]:
    """The arguments of ``app.analytics_admin_dashboard`` for these filters (NULL lists mean any)."""
    return {
        "prev_start": filters.previous_start,
        "granularity": granularity,
        "start": filters.start,
        "end": filters.end,
        "providers": list(filters.providers) or None,
        "models": list(filters.models) or None,
        "statuses": list(filters.statuses) or None,
    }


@contextmanager
def _admin_errors() -> Iterator[None]:
    try:
        yield
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "42501":
            raise AdminOnly("administrator privileges required") from None
        raise


def _rows(
    engine: Engine, admin_id: uuid.UUID, filters: Filters, granularity: Granularity
) -> Sequence[Mapping[Any, Any]]:
    if engine.dialect.name == "postgresql":
        with _admin_errors(), user_session(admin_id, engine=engine) as session:
            return session.execute(_CALL, function_arguments(filters, granularity)).mappings().all()
    with user_session(admin_id, engine=engine) as session:
        users = USERS.alias("u")
        is_admin = session.execute(select(users.c.is_admin).where(users.c.id == admin_id)).scalar()
    if not is_admin:
        raise AdminOnly("administrator privileges required")
    statement = bound_figures_statement(
        ADMIN_PARTS,
        dialect=engine.dialect.name,
        granularity=granularity,
        lists=filtering_lists(filters),
        scoped=False,
        users=USERS,
    )
    with system_session(engine=engine) as session:
        return session.execute(statement, query_parameters(filters)).mappings().all()


def load_admin_dashboard(
    *, admin_id: uuid.UUID, filters: Filters, granularity: Granularity = "day", engine: Engine | None = None
) -> AdminDashboard:
    """Figures across all users, per user and per user x model; ``AdminOnly`` for non-admins."""
    granularity = check_granularity(granularity)
    figures = FigureRows(_rows(engine or get_engine(), admin_id, filters, granularity))
    by_user_model = figures.frame(USAGE, email=True)
    by_user = by_user_model.groupby(["user_id", "email"], as_index=False, sort=False, dropna=False)[
        list(SUM_NAMES)
    ].sum()
    return AdminDashboard(
        filters=filters,
        granularity=granularity,
        kpis=figures.kpis(),
        series=figures.frame(SERIES),
        quality=figures.frame(QUALITY),
        by_user=finish(by_user, order=BY_USER_ORDER),
        by_user_model=by_user_model,
        prompt_versions=versions_from(figures),
    )
