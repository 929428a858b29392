"""Usage counters per user and UTC day, kept by a trigger on ``agent_runs``.

Quotas (tokens per UTC day, cost per UTC month) were sums over the user's runs of the period, read on
every chat turn: their cost grew with the user's usage (a month of heavy use is tens of thousands of
rows) and deleting a conversation (its runs cascade) gave the quota back. ``usage_counters`` holds one
row per (user, UTC day of the run's ``created_at``) with the tokens (input + cached input + cache
writes + output) and the cost; the quota check reads one day and at most 31 rows of the month.

The database keeps the counters, not the app: a trigger on ``agent_runs`` adds every change of a run's
token counts or cost (INSERT with usage, UPDATE of those columns: the difference new − old), so every
writer (the chat turn's final UPDATE, tests, imports) is counted the same way. Deleting runs does not
subtract: usage counts what was used. The counters go with the user (FK ``ON DELETE CASCADE``, and the
privacy deletion is catalogue-driven). Existing runs are summed into the table here (backfill).

PostgreSQL: same row-level security as every user table (ENABLE + FORCE, owner-only policies for
``advisor_app``, explicit ones for ``advisor_system``); the trigger function is SECURITY INVOKER, so
it writes as the identity that changed the run (under that identity's policies). SQLite: the same
triggers in SQLite's dialect (UPSERT).

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
SYSTEM_ROLE = "advisor_system"
_TOKENS = (
    "coalesce({r}.input_tokens, 0) + coalesce({r}.cached_input_tokens, 0) "
    "+ coalesce({r}.cache_write_tokens, 0) + coalesce({r}.output_tokens, 0)"
)
_USAGE_COLUMNS = "input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, cost_usd"

_PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION app.count_run_usage() RETURNS trigger
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, public
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

_SQLITE_UPSERT = """
    INSERT INTO usage_counters (user_id, day, tokens, cost_usd)
    SELECT NEW.user_id, date(NEW.created_at), {tokens}, {cost} WHERE true
    ON CONFLICT (user_id, day) DO UPDATE
        SET tokens = tokens + excluded.tokens, cost_usd = cost_usd + excluded.cost_usd;
"""
_SQLITE_INSERT_TOKENS = _TOKENS.format(r="NEW")
_SQLITE_UPDATE_TOKENS = f"({_TOKENS.format(r='NEW')}) - ({_TOKENS.format(r='OLD')})"
_SQLITE_UPDATE_COST = "coalesce(NEW.cost_usd, 0) - coalesce(OLD.cost_usd, 0)"


def upgrade() -> None:
    op.create_table(
        "usage_counters",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=18, scale=8), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "day"),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            f"""
            INSERT INTO usage_counters (user_id, day, tokens, cost_usd)
            SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, sum({_TOKENS.format(r="r")}),
                   sum(coalesce(r.cost_usd, 0))
            FROM agent_runs r GROUP BY 1, 2
            """
        )
        op.execute(_PG_FUNCTION)
        op.execute(
            "CREATE TRIGGER agent_runs_count_usage_insert AFTER INSERT ON agent_runs FOR EACH ROW "
            "WHEN (NEW.input_tokens IS NOT NULL OR NEW.output_tokens IS NOT NULL "
            "OR NEW.cached_input_tokens IS NOT NULL OR NEW.cache_write_tokens IS NOT NULL "
            "OR NEW.cost_usd IS NOT NULL) EXECUTE FUNCTION app.count_run_usage()"
        )
        op.execute(
            f"CREATE TRIGGER agent_runs_count_usage_update AFTER UPDATE OF {_USAGE_COLUMNS} ON agent_runs "
            "FOR EACH ROW EXECUTE FUNCTION app.count_run_usage()"
        )
        mine = "user_id = (SELECT app.current_user_id())"
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON usage_counters TO {APP_ROLE}, {SYSTEM_ROLE}")
        op.execute("ALTER TABLE usage_counters ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE usage_counters FORCE ROW LEVEL SECURITY")
        for action, clause in (
            ("select", f"USING ({mine})"),
            ("insert", f"WITH CHECK ({mine})"),
            ("update", f"USING ({mine}) WITH CHECK ({mine})"),
            ("delete", f"USING ({mine})"),
        ):
            op.execute(
                f"CREATE POLICY usage_counters_owner_{action} ON usage_counters FOR {action.upper()} "
                f"TO {APP_ROLE} {clause}"
            )
        op.execute(
            f"CREATE POLICY usage_counters_system ON usage_counters FOR ALL TO {SYSTEM_ROLE} "
            "USING (true) WITH CHECK (true)"
        )
    else:
        op.execute(
            f"""
            INSERT INTO usage_counters (user_id, day, tokens, cost_usd)
            SELECT user_id, date(created_at), sum({_TOKENS.format(r="r")}), sum(coalesce(r.cost_usd, 0))
            FROM agent_runs r GROUP BY 1, 2
            """
        )
        op.execute(
            "CREATE TRIGGER agent_runs_count_usage_insert AFTER INSERT ON agent_runs FOR EACH ROW "
            "WHEN NEW.input_tokens IS NOT NULL OR NEW.output_tokens IS NOT NULL "
            "OR NEW.cached_input_tokens IS NOT NULL OR NEW.cache_write_tokens IS NOT NULL "
            "OR NEW.cost_usd IS NOT NULL BEGIN"
            + _SQLITE_UPSERT.format(tokens=_SQLITE_INSERT_TOKENS, cost="coalesce(NEW.cost_usd, 0)")
            + "END"
        )
        op.execute(
            f"CREATE TRIGGER agent_runs_count_usage_update AFTER UPDATE OF {_USAGE_COLUMNS} ON agent_runs "
            f"FOR EACH ROW WHEN ({_SQLITE_UPDATE_TOKENS}) <> 0 OR ({_SQLITE_UPDATE_COST}) <> 0 BEGIN"
            + _SQLITE_UPSERT.format(tokens=_SQLITE_UPDATE_TOKENS, cost=_SQLITE_UPDATE_COST)
            + "END"
        )


def downgrade() -> None:
    pg = op.get_bind().dialect.name == "postgresql"
    for trigger in ("agent_runs_count_usage_update", "agent_runs_count_usage_insert"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}" + (" ON agent_runs" if pg else ""))
    if pg:
        op.execute("DROP FUNCTION IF EXISTS app.count_run_usage()")
    op.drop_table("usage_counters")
