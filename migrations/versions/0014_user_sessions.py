"""``user_sessions``: the server side of a browser's sign-in (local mode), revocable at any time.

One row per signed-in browser: the SHA-256 (hex) of the session token the browser holds in an
HttpOnly cookie (the token itself is never stored), when the session was created and last used, and
when it expires (sliding: each use pushes ``expires_at`` forward, ``ADVISOR_SESSION_DAYS``), and the
browser's user agent (trimmed) so a person can tell their sessions apart. Revoking a session deletes
its row: a stolen token stops working at once. Deleted with the user (FK ``ON DELETE CASCADE``; the
privacy deletion and export are catalogue-driven).

PostgreSQL: row-level security as on every user table (ENABLE + FORCE). ``advisor_app`` may read and
delete its own sessions (see them, sign them out), never insert or update one: it cannot mint a
session, extend its expiry or move a session to another account. Sessions are created, looked up by
token hash and refreshed by ``advisor_system`` (``core.sessions``), which has explicit policies.

Revision ID: 0014
Revises: 0013
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
SYSTEM_ROLE = "advisor_system"


def upgrade() -> None:
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash", name="uq_user_sessions_token_hash"),
    )
    op.create_index("ix_user_sessions_user_id", "user_sessions", ["user_id"])
    op.create_index("ix_user_sessions_expires_at", "user_sessions", ["expires_at"])
    if op.get_bind().dialect.name != "postgresql":
        return
    mine = "user_id = (SELECT app.current_user_id())"
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON user_sessions TO {SYSTEM_ROLE}")
    op.execute(f"GRANT SELECT, DELETE ON user_sessions TO {APP_ROLE}")
    op.execute("ALTER TABLE user_sessions ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE user_sessions FORCE ROW LEVEL SECURITY")
    # owner-only policies for every command, as on every user table; the grants above are what keep
    # advisor_app from inserting or updating at all
    for action, clause in (
        ("select", f"USING ({mine})"),
        ("insert", f"WITH CHECK ({mine})"),
        ("update", f"USING ({mine}) WITH CHECK ({mine})"),
        ("delete", f"USING ({mine})"),
    ):
        op.execute(
            f"CREATE POLICY user_sessions_owner_{action} ON user_sessions FOR {action.upper()} "
            f"TO {APP_ROLE} {clause}"
        )
    op.execute(
        f"CREATE POLICY user_sessions_system ON user_sessions FOR ALL TO {SYSTEM_ROLE} "
        "USING (true) WITH CHECK (true)"
    )


def downgrade() -> None:
    op.drop_index("ix_user_sessions_expires_at", table_name="user_sessions")
    op.drop_index("ix_user_sessions_user_id", table_name="user_sessions")
    op.drop_table("user_sessions")
