"""PostgreSQL row-level security: roles, app.current_user_id(), grants, owner-only policies.

Two NOLOGIN roles; the app's login role is made a member of both (README, "PostgreSQL"):
- ``advisor_app``: what ``user_session(user_id)`` switches to. Every user-owned table has
  ENABLE + FORCE ROW LEVEL SECURITY and select/insert/update/delete policies that admit only rows
  whose owner column equals ``(select app.current_user_id())`` (the sub-select is evaluated once
  per query, not per row). With no ``app.user_id`` set it sees nothing.
- ``advisor_system``: what ``system_session()`` switches to, for the few paths that have no user
  yet or span users (sign-in lookup by email, first-user check, admin grants, the recovery sweep of
  runs left pending by a crash). Its policies are explicit, so neither role needs BYPASSRLS.

Roles are cluster-wide: downgrade drops the policies, grants, schema ``app`` but keeps the roles.
On SQLite this revision does nothing (no RLS there; app-level filters are the only wall).

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
SYSTEM_ROLE = "advisor_system"
# table -> owner column
OWNED = {
    "users": "id",
    "user_profiles": "user_id",
    "vibe_configs": "user_id",
    "conversations": "user_id",
    "agent_runs": "user_id",
}


def _create_role(name: str) -> None:
    # Concurrent migrations of different databases may race on the cluster-wide role.
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
                CREATE ROLE {name} NOLOGIN NOSUPERUSER NOBYPASSRLS NOINHERIT;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$;
        """
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _create_role(APP_ROLE)
    _create_role(SYSTEM_ROLE)
    op.execute("CREATE SCHEMA IF NOT EXISTS app")
    op.execute(
        """
        CREATE OR REPLACE FUNCTION app.current_user_id() RETURNS uuid
        LANGUAGE sql STABLE PARALLEL SAFE
        AS $$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$
        """
    )
    for role in (APP_ROLE, SYSTEM_ROLE):
        op.execute(f"GRANT USAGE ON SCHEMA app TO {role}")
        op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        op.execute(f"GRANT EXECUTE ON FUNCTION app.current_user_id() TO {role}")
    tables = ", ".join(OWNED)
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {APP_ROLE}")
    op.execute(f"GRANT INSERT ON deletion_records TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables}, deletion_records TO {SYSTEM_ROLE}")
    op.execute(f"GRANT SELECT ON alembic_version TO {SYSTEM_ROLE}, {APP_ROLE}")
    for table, column in OWNED.items():
        mine = f"{column} = (SELECT app.current_user_id())"
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_owner_select ON {table} FOR SELECT TO {APP_ROLE} USING ({mine})")
        op.execute(f"CREATE POLICY {table}_owner_insert ON {table} FOR INSERT TO {APP_ROLE} WITH CHECK ({mine})")
        op.execute(
            f"CREATE POLICY {table}_owner_update ON {table} FOR UPDATE TO {APP_ROLE} "
            f"USING ({mine}) WITH CHECK ({mine})"
        )
        op.execute(f"CREATE POLICY {table}_owner_delete ON {table} FOR DELETE TO {APP_ROLE} USING ({mine})")
        op.execute(
            f"CREATE POLICY {table}_system ON {table} FOR ALL TO {SYSTEM_ROLE} USING (true) WITH CHECK (true)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in OWNED:
        for suffix in ("owner_select", "owner_insert", "owner_update", "owner_delete", "system"):
            op.execute(f"DROP POLICY IF EXISTS {table}_{suffix} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    tables = ", ".join([*OWNED, "deletion_records", "alembic_version"])
    op.execute(f"REVOKE ALL ON {tables} FROM {APP_ROLE}, {SYSTEM_ROLE}")
    op.execute("DROP SCHEMA IF EXISTS app CASCADE")
    op.execute(f"REVOKE ALL ON SCHEMA public FROM {APP_ROLE}, {SYSTEM_ROLE}")
