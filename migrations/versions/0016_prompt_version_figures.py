"""Analytics: prompt versions judged by their results, for each user and, as aggregates, for admins.

Every run stores its prompt's sha256 and atom versions; with the user's feedback and the version
link of 0011 the analytics now tell how each prompt version did: runs, answers, thumbs up and down,
superseded runs (edits and regenerations), interruptions, input tokens, cost, first and last use
(``core.analytics.figures.VERSION_SUMS``, view ``PROMPT_VERSIONS``).

* **Indexes.** The other figures read ``agent_runs`` by index-only scans of 0003/0007/0013's covering
  indexes. The prompt-version figures read other columns (the prompt's sha256 and atom versions,
  feedback, the version link), so they get two covering indexes of their own, keyed as those are
  (``created_at`` across users; ``user_id, created_at`` per user): widening the existing ones would
  make every other figure scan the larger entries too. SQLite: the same indexes without INCLUDE.
* **Admin function.** ``app.analytics_admin_dashboard`` gains the view as one more part of its
  statement and its columns in the result (``prompt_sha256``, ``atom_versions`` and the figures; no
  user, no content): dropped and created again from the generated snapshot
  ``migrations/sql/0016_analytics_admin_dashboard.sql``, with the same grants.

Downgrade restores 0013's function and drops the two indexes.

Revision ID: 0016
Revises: 0015
"""
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
ARG_TYPES = "timestamptz, text, timestamptz, timestamptz, text[], text[], text[]"
SQL = Path(__file__).resolve().parent.parent / "sql"
VERSION_COLUMNS = [
    "provider", "model", "status", "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
    "cost_usd", "prompt_sha256", "atom_versions", "feedback", "superseded_by",
]
INDEXES = (
    ("ix_agent_runs_versions_user_id_created_at", ["user_id", "created_at"], VERSION_COLUMNS),
    ("ix_agent_runs_versions_created_at", ["created_at"], ["user_id", *VERSION_COLUMNS]),
)


def _recreate(sql_file: str) -> None:
    # DROP first: CREATE OR REPLACE cannot change a function's result columns
    op.execute(f"DROP FUNCTION IF EXISTS app.analytics_admin_dashboard({ARG_TYPES})")
    op.execute((SQL / sql_file).read_text())
    op.execute(f"REVOKE ALL ON FUNCTION app.analytics_admin_dashboard({ARG_TYPES}) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION app.analytics_admin_dashboard({ARG_TYPES}) TO {APP_ROLE}")


def upgrade() -> None:
    for name, keys, include in INDEXES:
        op.create_index(name, "agent_runs", keys, postgresql_include=include)
    if op.get_bind().dialect.name == "postgresql":
        _recreate("0016_analytics_admin_dashboard.sql")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _recreate("0013_analytics_admin_dashboard.sql")
    for name, _keys, _include in reversed(INDEXES):
        op.drop_index(name, table_name="agent_runs")
