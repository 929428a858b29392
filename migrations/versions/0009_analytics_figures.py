"""Analytics: the admin dashboard's function generated from the one definition of each figure.

``app.analytics_admin_dashboard`` was SQL written by hand (migrations 0004, 0006, 0007): a second
definition of every figure beside the app's own queries. It is now the SQL that
``core.analytics.admin_function.create_function_sql()`` compiles from the same SQLAlchemy
definitions (``core.analytics.figures``) and views (``core.analytics.statements``) that the user
dashboard and SQLite use, kept as a snapshot in ``migrations/sql/0009_analytics_admin_dashboard.sql``
(a migration runs the SQL it ran when it was written, and imports no app code). A test checks that
the newest snapshot is still what the figures generate: a later change to a figure or view of the
admin dashboard needs a new migration with a new snapshot.

The figures, security checks, settings and arguments are unchanged; the result columns have the
same names, with ``bucket`` now a ``timestamptz`` (the start of the UTC day, week or month) and
``period`` set on every row (``current``, or ``previous`` for the earlier period's KPIs); rows come
unordered (the app sorts each table).

Downgrade restores 0007's function (``migrations/sql/0007_analytics_admin_dashboard.sql``). SQLite
has no functions: nothing to do there.

Revision ID: 0009
Revises: 0008
"""
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
ARG_TYPES = "timestamptz, text, timestamptz, timestamptz, text[], text[], text[]"
SQL = Path(__file__).resolve().parent.parent / "sql"


def _recreate(sql_file: str) -> None:
    # DROP first: CREATE OR REPLACE cannot change a function's result columns
    op.execute(f"DROP FUNCTION IF EXISTS app.analytics_admin_dashboard({ARG_TYPES})")
    op.execute((SQL / sql_file).read_text())
    op.execute(f"REVOKE ALL ON FUNCTION app.analytics_admin_dashboard({ARG_TYPES}) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION app.analytics_admin_dashboard({ARG_TYPES}) TO {APP_ROLE}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _recreate("0009_analytics_admin_dashboard.sql")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _recreate("0007_analytics_admin_dashboard.sql")
