"""Admin analytics in one SECURITY DEFINER function whose parts can run in parallel.

Migration 0003's four functions (``app.analytics_admin_{kpis,series,quality,usage}``) each scanned
the range on their own. They are replaced by one, ``app.analytics_admin_dashboard``, which returns
every admin figure as rows tagged by ``figure`` (``kpis``, ``series``, ``quality``, ``usage``) from
one statement of five independent aggregates (KPIs of the current period, KPIs of the previous one,
series, quality, usage) joined by UNION ALL.

* **Parallel.** The five aggregates are the children of one Parallel Append: the leader and the
  parallel workers each take whole aggregates, so the page costs about the slowest one instead of
  their sum when cores are free (``RETURN QUERY`` may use parallel query since PostgreSQL 14).
* **Exact percentiles.** Still ``percentile_cont`` (float8 linear interpolation, as
  ``numpy.percentile``). p50 and p95 of one column share one sort (PostgreSQL shares the state of
  ordered-set aggregates with the same input), and each period is sorted on its own (no FILTER over
  both periods).
* **Cheap buckets.** Days and ISO weeks are ``date_bin`` over the UTC instant (integer arithmetic,
  origin Monday 2000-01-03 00:00 UTC); months ``date_trunc('month', created_at, 'UTC')``.
* **No JIT** (``jit = off``): compiling the aggregates cost more than it saved.
* **One-shot plan.** The statement is a constant run by ``RETURN QUERY EXECUTE ... USING``, so it is
  planned for the actual values (filters left NULL fold away) instead of a cached generic plan.
* **Usage** is per user x provider x model only; the caller sums each user's rows for the per-user
  table (integers and Decimal: exact), which saves a second grouping set over every run.

Security is unchanged: SECURITY DEFINER, the administrator check first, ``search_path`` pinned to
``pg_catalog, public`` (the first setting), every object schema-qualified, aggregates only (never
message content, titles, prompts or request ids), EXECUTE revoked from PUBLIC and granted to
``advisor_app`` only. No index or table changes. Downgrade restores the four 0003 functions.

The SQL of both versions is frozen in ``migrations/sql/`` (this function as created here, and
0003's four functions as 0003 created them): this migration imports no other one.

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
ARG_TYPES = "timestamptz, text, timestamptz, timestamptz, text[], text[], text[]"
OLD_FUNCTIONS = {
    "analytics_admin_kpis": "timestamptz, timestamptz, timestamptz, text[], text[], text[]",
    "analytics_admin_series": "text, timestamptz, timestamptz, text[], text[], text[]",
    "analytics_admin_quality": "text, timestamptz, timestamptz, text[], text[], text[]",
    "analytics_admin_usage": "timestamptz, timestamptz, text[], text[], text[]",
}
SQL = Path(__file__).resolve().parent.parent / "sql"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # DROP first: CREATE OR REPLACE cannot change the result columns of an earlier draft of this function
    op.execute(f"DROP FUNCTION IF EXISTS app.analytics_admin_dashboard({ARG_TYPES})")
    op.execute((SQL / "0004_analytics_admin_dashboard.sql").read_text())
    op.execute(f"REVOKE ALL ON FUNCTION app.analytics_admin_dashboard({ARG_TYPES}) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION app.analytics_admin_dashboard({ARG_TYPES}) TO {APP_ROLE}")
    for name, args in OLD_FUNCTIONS.items():
        op.execute(f"DROP FUNCTION IF EXISTS app.{name}({args})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION IF EXISTS app.analytics_admin_dashboard({ARG_TYPES})")
    for name in OLD_FUNCTIONS:
        op.execute((SQL / f"0003_{name}.sql").read_text())
    for name, args in OLD_FUNCTIONS.items():
        op.execute(f"REVOKE ALL ON FUNCTION app.{name}({args}) FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION app.{name}({args}) TO {APP_ROLE}")
