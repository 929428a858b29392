"""Full-text search over a user's conversations: titles, messages and answers (``core.search``).

PostgreSQL:
- ``conversations.search_tsv`` and ``agent_runs.search_tsv``: stored generated ``tsvector`` columns
  (``english`` configuration: words are stemmed, so "planning" finds "plans"), of the title and of
  the message and answer. The database keeps them in step with every insert and update; nobody
  writes them (advisor_app's column privileges of 0010 are unchanged).
- GIN indexes on ``(user_id, search_tsv)``, through the ``btree_gin`` extension (a trusted
  extension: the database owner may create it), so one index serves "this user's rows matching
  these words". Row-level security is unchanged: the columns belong to tables that already have it.

SQLite: FTS5 virtual tables ``conversations_fts`` (title) and ``agent_runs_fts`` (user_message,
output) with external content (the text stays in the tables; the FTS index refers to their rowids),
kept in step by insert, update and delete triggers, and filled from the existing rows. A ``VACUUM``
may renumber the rowids of these tables, and a later migration that rebuilds one of them (a batch
"move and copy") drops its triggers: after either, recreate the triggers as here and run
``INSERT INTO <name>(<name>) VALUES('rebuild')``.

Neither holds anything the tables do not: the export and the account deletion skip them
(``core.user_tables``), and deleting a user's rows removes their search entries with them.

Revision ID: 0015
Revises: 0014
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> the text the search column is made of (PostgreSQL)
PG_DOCUMENTS = {
    "conversations": "to_tsvector('english'::regconfig, title)",
    "agent_runs": "to_tsvector('english'::regconfig, user_message || ' ' || output)",
}
# table -> its searchable text columns (SQLite FTS5)
SQLITE_COLUMNS = {"conversations": ("title",), "agent_runs": ("user_message", "output")}


def _sqlite_fts(table: str, columns: tuple[str, ...]) -> list[str]:
    fts = f"{table}_fts"
    cols = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    add = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new});"
    remove = f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old});"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table}', content_rowid='rowid', "
        "tokenize='porter unicode61')",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {remove} END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {cols} ON {table} BEGIN {remove} {add} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
        for table, document in PG_DOCUMENTS.items():
            op.execute(f"ALTER TABLE {table} ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS ({document}) STORED")
            op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (user_id, search_tsv)")
        return
    for table, columns in SQLITE_COLUMNS.items():
        for statement in _sqlite_fts(table, columns):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in PG_DOCUMENTS:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_tsv")
        # the btree_gin extension stays: other objects of the database may use it
        return
    for table in SQLITE_COLUMNS:
        for suffix in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")
        op.execute(f"DROP TABLE IF EXISTS {table}_fts")
