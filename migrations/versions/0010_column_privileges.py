"""Column privileges for ``advisor_app``: a user session writes only what the product lets a user change.

Row-level security (0002) keeps a user session to its own rows, but it could still write every column
of them: make itself admin, raise its quota overrides, reset its quota by deleting its usage counters,
or rewrite its password hash. After this revision ``advisor_app`` writes only what the product lets a
user change:

- ``users``: SELECT and DELETE (the account deletion) only. Sign-up, admin grants, quota overrides,
  password rehashes and OIDC links run as ``advisor_system`` (``core.auth``; the admin actions after
  an admin check).
- ``user_profiles``, ``vibe_configs``: INSERT and DELETE; UPDATE of every column but the keys.
- ``conversations``: INSERT and DELETE; UPDATE of ``title`` only.
- ``agent_runs``: INSERT (of a pending run, see below) and DELETE; UPDATE of the live run's output and
  finish only (status, provider, model, fallback, usage, cost, timings, prompt hash, atoms, error):
  the message, owner, conversation and time of a run never change.
- ``usage_counters``, ``signin_addresses``: SELECT only (accounting; sign-in records).
- ``deletion_records``: nothing (the account deletion writes its record as ``advisor_system``).

A trigger (``app.guard_run_write``, BEFORE INSERT OR UPDATE on ``agent_runs``) adds what a column
grant cannot say, for ``advisor_app`` only: a run is inserted ``pending`` with no usage figures;
usage figures are never negative; a finished run (status not ``pending``) is never reopened, and its
recorded usage figures (tokens, cost) are never lowered or erased. A figure not yet recorded may still
be recorded: the late finish of a run the recovery sweep already marked ``interrupted`` writes it then.

Usage accounting keeps working for user sessions: ``app.count_run_usage`` (0005's trigger function
on ``agent_runs``) becomes SECURITY DEFINER with a pinned ``search_path``, so it writes
``usage_counters`` with the rights of its owner (the migration role, which owns the tables) however
the run was written. If that role is neither superuser nor BYPASSRLS, FORCE ROW LEVEL SECURITY would
hide the counters from it, so it gets a policy on ``usage_counters`` (as 0003 does for its read-only
admin functions): it owns the table anyway. Deleting runs still subtracts nothing.

Downgrade restores 0008's privileges and 0005's SECURITY INVOKER function. SQLite: nothing (no roles;
the application is the only wall there).

Revision ID: 0010
Revises: 0009
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"

_SLIDERS = ("playfulness", "revenue_focus", "technical_depth", "brevity", "formality")
_RUN_FINISH = (
    "status", "output", "provider", "model", "fallback_from", "input_tokens", "output_tokens",
    "cached_input_tokens", "cache_write_tokens", "cost_usd", "ttft_ms", "latency_ms", "prompt_sha256",
    "atom_versions", "error_code",
)
# table -> the columns advisor_app may UPDATE (it keeps table-level SELECT, INSERT and DELETE there)
UPDATABLE: dict[str, tuple[str, ...]] = {
    "user_profiles": ("role", "stack", "vertical", "updated_at"),
    "vibe_configs": ("name", *_SLIDERS, "is_active", "updated_at"),
    "conversations": ("title",),
    "agent_runs": _RUN_FINISH,
}
READ_DELETE_ONLY = ("users",)
READ_ONLY = ("usage_counters", "signin_addresses")
# 0008's state, restored by downgrade
FULL_BEFORE = ("users", *UPDATABLE, *READ_ONLY)

_USAGE = ("input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "cost_usd")
_NEGATIVE = " OR ".join(f"NEW.{c} < 0" for c in _USAGE)
_RECORDED = " OR ".join(f"NEW.{c} IS NOT NULL" for c in _USAGE)
_LOWERED = " OR ".join(f"(OLD.{c} IS NOT NULL AND (NEW.{c} IS NULL OR NEW.{c} < OLD.{c}))" for c in _USAGE)

_GUARD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION app.guard_run_write() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF current_user <> '{APP_ROLE}' THEN
        RETURN NEW;
    END IF;
    IF {_NEGATIVE} THEN
        RAISE EXCEPTION 'usage figures of a run cannot be negative' USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'pending' OR {_RECORDED} THEN
            RAISE EXCEPTION 'a user session starts a run pending, with no usage recorded'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    ELSIF OLD.status <> 'pending' THEN
        IF NEW.status = 'pending' THEN
            RAISE EXCEPTION 'a finished run cannot be reopened' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF {_LOWERED} THEN
            RAISE EXCEPTION 'the recorded usage of a finished run cannot be lowered or erased'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    RETURN NEW;
END $$
"""

_TOKENS = (
    "coalesce({r}.input_tokens, 0) + coalesce({r}.cached_input_tokens, 0) "
    "+ coalesce({r}.cache_write_tokens, 0) + coalesce({r}.output_tokens, 0)"
)


def _count_function(security: str, search_path: str) -> str:
    """0005's usage-counting trigger function, with the given security and ``search_path``."""
    return f"""
CREATE OR REPLACE FUNCTION app.count_run_usage() RETURNS trigger
LANGUAGE plpgsql {security} SET search_path = {search_path}
AS $$
DECLARE
    d_tokens bigint := {_TOKENS.format(r="NEW")};
    d_cost numeric := coalesce(NEW.cost_usd, 0);
BEGIN
    IF TG_OP = 'UPDATE' THEN
        d_tokens := d_tokens - ({_TOKENS.format(r="OLD")});
        d_cost := d_cost - coalesce(OLD.cost_usd, 0);
    END IF;
    IF d_tokens <> 0 OR d_cost <> 0 THEN
        INSERT INTO public.usage_counters AS u (user_id, day, tokens, cost_usd)
        VALUES (NEW.user_id, (NEW.created_at AT TIME ZONE 'UTC')::date, d_tokens, d_cost)
        ON CONFLICT (user_id, day) DO UPDATE
            SET tokens = u.tokens + EXCLUDED.tokens, cost_usd = u.cost_usd + EXCLUDED.cost_usd;
    END IF;
    RETURN NULL;
END $$
"""


_DEFINER_POLICY = """
DO $$ BEGIN
    IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('CREATE POLICY usage_counters_accounting_definer ON public.usage_counters '
                       'FOR ALL TO %I USING (true) WITH CHECK (true)', current_user);
    END IF;
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, updatable in UPDATABLE.items():
        op.execute(f"REVOKE UPDATE ON {table} FROM {APP_ROLE}")
        op.execute(f"GRANT UPDATE ({', '.join(updatable)}) ON {table} TO {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE ON {', '.join(READ_DELETE_ONLY)} FROM {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON {', '.join(READ_ONLY)} FROM {APP_ROLE}")
    op.execute(f"REVOKE INSERT ON deletion_records FROM {APP_ROLE}")

    op.execute(_GUARD_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION app.guard_run_write() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER agent_runs_guard_write BEFORE INSERT OR UPDATE ON agent_runs "
        "FOR EACH ROW EXECUTE FUNCTION app.guard_run_write()"
    )
    op.execute(_count_function("SECURITY DEFINER", "pg_catalog, pg_temp"))
    op.execute("REVOKE ALL ON FUNCTION app.count_run_usage() FROM PUBLIC")
    op.execute(_DEFINER_POLICY)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP POLICY IF EXISTS usage_counters_accounting_definer ON public.usage_counters")
    op.execute(_count_function("SECURITY INVOKER", "pg_catalog, public"))
    op.execute("GRANT EXECUTE ON FUNCTION app.count_run_usage() TO PUBLIC")
    op.execute("DROP TRIGGER IF EXISTS agent_runs_guard_write ON agent_runs")
    op.execute("DROP FUNCTION IF EXISTS app.guard_run_write()")
    tables = ", ".join(FULL_BEFORE)
    op.execute(f"REVOKE UPDATE ON {tables} FROM {APP_ROLE}")  # the column grants too
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {APP_ROLE}")
    op.execute(f"GRANT INSERT ON deletion_records TO {APP_ROLE}")
