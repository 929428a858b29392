"""Runs gain their version link, the user's feedback and the live turn's heartbeat.

- ``superseded_by``: a run replaced by an edit or a regeneration holds the id of the run that replaced
  it (NULL for the latest version). The earlier run stays, with its usage, in analytics and the
  export. No foreign key: the runs of a conversation are only ever deleted together.
- ``feedback`` (+1 thumbs up, -1 thumbs down), ``feedback_comment`` and ``feedback_at``: the user's
  judgement of an answer, stored on its run.
- ``heartbeat_at``: written while a turn is live (with each checkpoint of partial output, and
  periodically while it waits for a provider); the recovery sweep closes a pending run whose
  heartbeat has gone stale.

``advisor_app`` may UPDATE these columns of its own runs (row-level security still limits it to
them); the guard trigger of 0010 still keeps a finished run from being reopened or its usage lowered.
SQLite: the columns only (no CHECK there: adding one would rebuild the table and drop its triggers).

Revision ID: 0011
Revises: 0010
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
USER_COLUMNS = ("superseded_by", "feedback", "feedback_comment", "feedback_at", "heartbeat_at")


def upgrade() -> None:
    # plain ADD COLUMN on both dialects: on SQLite a table rebuild would drop 0005's triggers
    op.add_column("agent_runs", sa.Column("superseded_by", sa.Uuid(), nullable=True))
    op.add_column("agent_runs", sa.Column("feedback", sa.SmallInteger(), nullable=True))
    op.add_column("agent_runs", sa.Column("feedback_comment", sa.Text(), nullable=True))
    op.add_column("agent_runs", sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("agent_runs", sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint("ck_agent_runs_feedback", "agent_runs", "feedback IN (-1, 1)")
        op.execute(f"GRANT UPDATE ({', '.join(USER_COLUMNS)}) ON agent_runs TO {APP_ROLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"REVOKE UPDATE ({', '.join(USER_COLUMNS)}) ON agent_runs FROM {APP_ROLE}")
        op.drop_constraint("ck_agent_runs_feedback", "agent_runs", type_="check")
    for column in reversed(USER_COLUMNS):
        op.drop_column("agent_runs", column)
