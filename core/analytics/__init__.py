"""Usage analytics: every figure is a SQL aggregate computed by the database.

Nothing here loads a user's runs into memory to count them: each view is an aggregate query whose
(small) result becomes a pandas DataFrame or a dataclass for the charts.

* ``figures``: what each figure means (runs, tokens, cost, errors, fallbacks, unknown cost,
  latency and time-to-first-token percentiles, time buckets), defined once.
* ``statements``: the views (KPIs, series, quality, per model, per user x model) and the one SQL
  statement that computes a set of them on PostgreSQL or SQLite.
* ``dashboard``: one user's page (``load_dashboard``, ``kpis``, ``filter_options``).
* ``runs``: one user's runs (``recent_runs``, ``run_detail``).
* ``versions``: prompt versions judged by their results (per prompt and per atom version);
  ``prompt_versions`` loads one user's.
* ``admin``: the administrators' dashboard across users (``load_admin_dashboard``), through the
  database function that ``admin_function`` generates on PostgreSQL.
* ``filters`` and ``results``: what goes in and what comes out.

A run counts in a period when ``start <= created_at < end`` (UTC).
"""

from core.analytics.admin import AdminOnly, load_admin_dashboard
from core.analytics.dashboard import filter_options, kpis, load_dashboard, project_month_cost, prompt_versions
from core.analytics.filters import GRANULARITIES, Filters, Granularity
from core.analytics.results import (
    KPI_NAMES,
    AdminDashboard,
    Dashboard,
    FilterOptions,
    KpiComparison,
    Kpis,
    RunDetail,
    RunsPage,
)
from core.analytics.runs import MAX_PAGE_SIZE, recent_runs, run_detail
from core.analytics.versions import PromptVersions

__all__ = [
    "GRANULARITIES",
    "KPI_NAMES",
    "MAX_PAGE_SIZE",
    "AdminDashboard",
    "AdminOnly",
    "Dashboard",
    "FilterOptions",
    "Filters",
    "Granularity",
    "KpiComparison",
    "Kpis",
    "PromptVersions",
    "RunDetail",
    "RunsPage",
    "filter_options",
    "kpis",
    "load_admin_dashboard",
    "load_dashboard",
    "project_month_cost",
    "prompt_versions",
    "recent_runs",
    "run_detail",
]
