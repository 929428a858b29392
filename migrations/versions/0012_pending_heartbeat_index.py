"""The sweep of runs left by a stopped process finds them through a partial index.

- ``ix_agent_runs_pending_heartbeat``: ``agent_runs (heartbeat_at) WHERE status = 'pending'``. Every
  app process sweeps periodically (``core.run_leases.sweep_stale_runs``): the index holds only the
  pending runs, a handful at any time, so a sweep costs the same however many runs are stored.
- Runs the start-up sweep closed as ``abandoned`` (the rule before heartbeats) are given the cause
  that replaced it, ``process_stopped``: analytics count interruptions by cause, under one name.

No new privilege: the sweep and the heartbeat run as ``advisor_system`` (which may update runs,
0002), a turn's checkpoint writes its own run's ``heartbeat_at`` as ``advisor_app`` (0011).
Downgrade drops the index (the renamed cause stays: both mean the same).

Revision ID: 0012
Revises: 0011
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_agent_runs_pending_heartbeat"
PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index(INDEX, "agent_runs", ["heartbeat_at"], postgresql_where=PENDING, sqlite_where=PENDING)
    op.execute(
        "UPDATE agent_runs SET error_code = 'process_stopped' "
        "WHERE status = 'interrupted' AND error_code = 'abandoned'"
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="agent_runs")
