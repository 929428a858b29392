"""Analytics: cached input tokens counted, and runs of unknown cost counted instead of hidden.

Two figures of the admin dashboard (``app.analytics_admin_dashboard``, migrations 0004 and 0006)
were incomplete:

* **Tokens** summed ``input_tokens`` and ``output_tokens`` only. ``input_tokens`` excludes cached
  input and cache writes (they are priced at their own rates), so a workload served from the
  provider's prompt cache looked almost free of tokens, while the daily token quota (migration 0005)
  counts all four. New column ``cache_tokens``: the sum of ``cached_input_tokens`` and
  ``cache_write_tokens``; the app's Tokens figure is input + cache + output, as the quota counts.
* **Cost** summed ``cost_usd`` with NULL as 0. A run whose cost is unknown -- its model is not in
  ``pricing.toml``, or its answer was cut before the provider reported the output tokens -- added
  $0 with no sign that the sum is incomplete. New column ``unknown_cost_runs``: runs that used
  tokens (input or output reported) but have no cost. The app says how many are left out.

The function is 0006's with the two sums appended to every aggregate and the two columns added to
the result. A function's result columns cannot change in place, so it is dropped and created
again, with the same grants. Its SQL as created here, and 0006's for the downgrade, are frozen in
``migrations/sql/``: this migration imports no other one.

The analytics read ``agent_runs`` through covering indexes (migration 0003: ``INCLUDE`` the
figures' columns), so a page load is an index-only scan; summing two more columns without them in
the index would turn the admin view into heap reads. Both indexes are rebuilt with
``cached_input_tokens`` and ``cache_write_tokens`` included (inside the migration's transaction:
writes to ``agent_runs`` wait while they build).

Downgrade restores 0006's function and 0003's indexes. SQLite has no functions or included
columns: nothing to do there.

Revision ID: 0007
Revises: 0006
"""
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
ARG_TYPES = "timestamptz, text, timestamptz, timestamptz, text[], text[], text[]"
SQL = Path(__file__).resolve().parent.parent / "sql"
# the INCLUDE columns of 0003's two covering indexes, as 0003 created them
STATS_COLUMNS = [
    "provider", "model", "status", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "ttft_ms",
    "fallback_from",
]
USER_INCLUDE = ["conversation_id", *STATS_COLUMNS]
RANGE_INCLUDE = ["user_id", *STATS_COLUMNS]
CACHE_COLUMNS = ["cached_input_tokens", "cache_write_tokens"]


def _covering_indexes(extra: list[str]) -> None:
    """(Re)build 0003's two covering indexes with ``extra`` columns appended to their INCLUDE."""
    for name, keys, include in (
        ("ix_agent_runs_user_id_created_at", ["user_id", "created_at"], USER_INCLUDE),
        ("ix_agent_runs_created_at", ["created_at"], RANGE_INCLUDE),
    ):
        op.drop_index(name, table_name="agent_runs")
        op.create_index(name, "agent_runs", keys, postgresql_include=[*include, *extra])


def _recreate(sql_file: str) -> None:
    op.execute(f"DROP FUNCTION IF EXISTS app.analytics_admin_dashboard({ARG_TYPES})")
    op.execute((SQL / sql_file).read_text())
    op.execute(f"REVOKE ALL ON FUNCTION app.analytics_admin_dashboard({ARG_TYPES}) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION app.analytics_admin_dashboard({ARG_TYPES}) TO {APP_ROLE}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _recreate("0007_analytics_admin_dashboard.sql")
    _covering_indexes(CACHE_COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _recreate("0006_analytics_admin_dashboard.sql")
    _covering_indexes([])
