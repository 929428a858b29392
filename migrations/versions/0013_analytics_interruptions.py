"""Analytics: interrupted answers counted, by cause.

A run cut off after part of its answer (``status = 'interrupted'``) was counted nowhere: not an
error, not a completed answer. The figures (``core.analytics.figures``) now count interruptions and
their causes from ``error_code``: ``process_stopped`` (the answering process died; the sweep of
``core.run_leases`` closed the run), ``shutdown`` (a graceful stop mid-answer), ``user_stop``
(``cancelled``) and ``cut_stream`` (any other code: the provider's stream broke or timed out).

The admin dashboard's function is created again from the figures (snapshot
``migrations/sql/0013_analytics_admin_dashboard.sql``, same arguments, checks and grants, five more
result columns). The figures now read ``error_code``, so both covering indexes of 0003/0007 are
rebuilt with it in their ``INCLUDE`` (inside the migration's transaction: writes to ``agent_runs``
wait while they build), keeping the analytics index-only.

Downgrade restores 0009's function and 0007's indexes. SQLite: nothing (no functions, no included
columns).

Revision ID: 0013
Revises: 0012
"""
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
ARG_TYPES = "timestamptz, text, timestamptz, timestamptz, text[], text[], text[]"
SQL = Path(__file__).resolve().parent.parent / "sql"
# the INCLUDE columns of the two covering indexes as 0007 left them
STATS_COLUMNS = [
    "provider", "model", "status", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "ttft_ms",
    "fallback_from", "cached_input_tokens", "cache_write_tokens",
]


def _covering_indexes(extra: list[str]) -> None:
    """(Re)build the two covering indexes with ``extra`` columns appended to their INCLUDE."""
    for name, keys, include in (
        ("ix_agent_runs_user_id_created_at", ["user_id", "created_at"], ["conversation_id", *STATS_COLUMNS]),
        ("ix_agent_runs_created_at", ["created_at"], ["user_id", *STATS_COLUMNS]),
    ):
        op.drop_index(name, table_name="agent_runs")
        op.create_index(name, "agent_runs", keys, postgresql_include=[*include, *extra])


def _recreate(sql_file: str) -> None:
    # DROP first: CREATE OR REPLACE cannot change a function's result columns
    op.execute(f"DROP FUNCTION IF EXISTS app.analytics_admin_dashboard({ARG_TYPES})")
    op.execute((SQL / sql_file).read_text())
    op.execute(f"REVOKE ALL ON FUNCTION app.analytics_admin_dashboard({ARG_TYPES}) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION app.analytics_admin_dashboard({ARG_TYPES}) TO {APP_ROLE}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _recreate("0013_analytics_admin_dashboard.sql")
    _covering_indexes(["error_code"])


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _recreate("0009_analytics_admin_dashboard.sql")
    _covering_indexes([])
