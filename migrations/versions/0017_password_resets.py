"""An admin's forced password reset: ``users.password_reset_required`` and ``password_resets``.

- ``users.password_reset_required`` (default false): while true, the account's password no longer
  signs in; only a one-time code from an admin does, and the person must then set a new password
  before anything else (``core.reset_codes``, ``core.credentials``).
- ``password_resets``: one row per one-time code an admin issued: the SHA-256 (hex) of the code
  (the code itself is shown once to the admin and never stored), when it was issued and when it
  expires. Redeeming a code deletes its row. Deleted with the user (FK ``ON DELETE CASCADE``; the
  privacy deletion and export are catalogue-driven).

PostgreSQL: row-level security as on every user table (ENABLE + FORCE, owner-only policies for
every command). ``advisor_app`` may only read its own codes (the export): it cannot mint a code,
extend one, or remove one; the flag on ``users`` stays out of its reach like every authentication
column (0010: ``users`` is read and delete only). Codes are issued, redeemed and removed by
``advisor_system``, which has an explicit policy.

Revision ID: 0017
Revises: 0016
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
SYSTEM_ROLE = "advisor_system"


def upgrade() -> None:
    # plain ADD COLUMN on both dialects: on SQLite a table rebuild would drop 0005's triggers
    op.add_column(
        "users",
        sa.Column("password_reset_required", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash", name="uq_password_resets_code_hash"),
    )
    op.create_index("ix_password_resets_user_id", "password_resets", ["user_id"])
    if op.get_bind().dialect.name != "postgresql":
        return
    mine = "user_id = (SELECT app.current_user_id())"
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON password_resets TO {SYSTEM_ROLE}")
    op.execute(f"GRANT SELECT ON password_resets TO {APP_ROLE}")
    op.execute("ALTER TABLE password_resets ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE password_resets FORCE ROW LEVEL SECURITY")
    # owner-only policies for every command, as on every user table; the grant above is what keeps
    # advisor_app from writing at all
    for action, clause in (
        ("select", f"USING ({mine})"),
        ("insert", f"WITH CHECK ({mine})"),
        ("update", f"USING ({mine}) WITH CHECK ({mine})"),
        ("delete", f"USING ({mine})"),
    ):
        op.execute(
            f"CREATE POLICY password_resets_owner_{action} ON password_resets FOR {action.upper()} "
            f"TO {APP_ROLE} {clause}"
        )
    op.execute(
        f"CREATE POLICY password_resets_system ON password_resets FOR ALL TO {SYSTEM_ROLE} "
        "USING (true) WITH CHECK (true)"
    )


def downgrade() -> None:
    op.drop_index("ix_password_resets_user_id", table_name="password_resets")
    op.drop_table("password_resets")
    op.drop_column("users", "password_reset_required")
