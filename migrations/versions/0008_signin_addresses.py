"""Client addresses each user has signed in from (``signin_addresses``).

The per-email total of sign-in attempts does not refuse an attempt from an address the account
signed in from recently (``core.accounts``): guessers at many addresses can no longer lock the owner out.
One row per (user, keyed hash of the address) with the last successful sign-in from it; the address
is never stored. Deleted with the user (FK ``ON DELETE CASCADE``; the privacy deletion and export are
catalogue-driven).

PostgreSQL: the same row-level security as every user table (ENABLE + FORCE, owner-only policies for
``advisor_app``, explicit ones for ``advisor_system``, which the sign-in lookup runs as), written out
as 0005 writes it for ``usage_counters``: a migration stays as it ran, so it does not call another's
code that could change after it.

Revision ID: 0008
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
SYSTEM_ROLE = "advisor_system"


def upgrade() -> None:
    op.create_table(
        "signin_addresses",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "address_hash"),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    mine = "user_id = (SELECT app.current_user_id())"
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON signin_addresses TO {APP_ROLE}, {SYSTEM_ROLE}")
    op.execute("ALTER TABLE signin_addresses ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE signin_addresses FORCE ROW LEVEL SECURITY")
    for action, clause in (
        ("select", f"USING ({mine})"),
        ("insert", f"WITH CHECK ({mine})"),
        ("update", f"USING ({mine}) WITH CHECK ({mine})"),
        ("delete", f"USING ({mine})"),
    ):
        op.execute(
            f"CREATE POLICY signin_addresses_owner_{action} ON signin_addresses FOR {action.upper()} "
            f"TO {APP_ROLE} {clause}"
        )
    op.execute(
        f"CREATE POLICY signin_addresses_system ON signin_addresses FOR ALL TO {SYSTEM_ROLE} "
        "USING (true) WITH CHECK (true)"
    )


def downgrade() -> None:
    op.drop_table("signin_addresses")
