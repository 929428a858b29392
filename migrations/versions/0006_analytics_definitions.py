"""Analytics definitions: latency percentiles over completed answers; a fallback is an answer.

The admin dashboard's function (``app.analytics_admin_dashboard``, migration 0004) counted every run
with ``fallback_from`` set as a fallback, including runs on which every provider failed (they fell
back to nothing), and took the latency percentiles over every run, so fast failures (an auth error
after a few milliseconds) pulled p50 down. Now, as in ``core.analytics`` (the per-user view and
SQLite):

* fallbacks = runs with ``fallback_from`` set whose status is not ``error``;
* latency p50/p95 = ``percentile_cont`` over runs with ``status = 'ok'`` (time to first token is
  unchanged: over every run that had a first token).

The function keeps its signature, result columns, grants and plan settings; only those two
fragments differ from 0004's. Its SQL as created here, and 0004's for the downgrade, are frozen in
``migrations/sql/``: this migration imports no other one. SQLite has no functions: nothing to do
there.

Revision ID: 0006
Revises: 0005
"""
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL = Path(__file__).resolve().parent.parent / "sql"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # CREATE OR REPLACE: same signature and result columns, so the grants are kept
    op.execute((SQL / "0006_analytics_admin_dashboard.sql").read_text())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute((SQL / "0004_analytics_admin_dashboard.sql").read_text())
