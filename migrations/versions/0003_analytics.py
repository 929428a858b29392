"""Usage analytics: admin aggregate functions (PostgreSQL, SECURITY DEFINER) returning figures only.

The admin view spans users, which ``advisor_app`` cannot see under row-level security. Instead of
widening any policy, four functions in schema ``app`` run with the rights of their owner (the
migration role) and return aggregates only — never ``user_message``, ``output``, titles, prompts or
request ids. Each one first checks that ``app.current_user_id()`` (the identity set by
``user_session``) is an administrator in ``users`` and raises ``insufficient_privilege`` otherwise.
``search_path`` is pinned to ``pg_catalog, public`` and every object outside it is schema-qualified.
EXECUTE is revoked from PUBLIC and granted to ``advisor_app`` only.

If the migration role is neither a superuser nor BYPASSRLS, FORCE ROW LEVEL SECURITY would hide
every row from it (it owns the tables but has no policy): a read-only policy for that role on
``users`` and ``agent_runs`` lets the definer functions see the rows they aggregate. The role owns
the tables anyway, so this grants it nothing it could not already take.

Indexes (declared on ``AgentRun`` too, so autogenerate stays empty): the per-user index
``ix_agent_runs_user_id_created_at`` becomes covering (``INCLUDE`` the aggregated columns, so a
user's figures are index-only scans instead of thousands of heap pages of message text), and
``ix_agent_runs_created_at`` (covering as well) serves the admin range scans across users.
SQLite: only the plain ``created_at`` index (no INCLUDE there; no RLS, no functions; the app
aggregates in ``system_session``).

Revision ID: 0003
Revises: 0002
"""
from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APP_ROLE = "advisor_app"
FILTER_ARGS = "p_start timestamptz, p_end timestamptz, p_providers text[], p_models text[], p_statuses text[]"
FILTER_TYPES = "timestamptz, timestamptz, text[], text[], text[]"
FUNCTIONS = {
    "analytics_admin_kpis": f"timestamptz, {FILTER_TYPES}",
    "analytics_admin_series": f"text, {FILTER_TYPES}",
    "analytics_admin_quality": f"text, {FILTER_TYPES}",
    "analytics_admin_usage": FILTER_TYPES,
}
DEFINER_POLICY_TABLES = ("users", "agent_runs")
STATS_COLUMNS = [
    "provider", "model", "status", "input_tokens", "output_tokens", "cost_usd", "latency_ms", "ttft_ms",
    "fallback_from",
]
USER_INCLUDE = ["conversation_id", *STATS_COLUMNS]
RANGE_INCLUDE = ["user_id", *STATS_COLUMNS]

_HEADER = """
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public
    SET work_mem = '64MB'
    AS $fn$
    #variable_conflict use_column
    BEGIN
        IF NOT EXISTS (
            SELECT 1 FROM public.users u WHERE u.id = app.current_user_id() AND u.is_admin
        ) THEN
            RAISE EXCEPTION 'analytics: administrator privileges required'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
"""
_GRANULARITY_CHECK = """
        IF p_granularity IS NULL OR p_granularity NOT IN ('day', 'week', 'month') THEN
            RAISE EXCEPTION 'analytics: granularity must be day, week or month'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
"""
_FOOTER = """
    END
    $fn$
"""
_WHERE = """
            r.created_at >= p_start AND r.created_at < p_end
            AND (p_providers IS NULL OR r.provider = ANY (p_providers))
            AND (p_models IS NULL OR r.model = ANY (p_models))
            AND (p_statuses IS NULL OR r.status = ANY (p_statuses))
"""
_SUMS = """
            count(*)::bigint,
            coalesce(sum(r.input_tokens), 0)::bigint,
            coalesce(sum(r.output_tokens), 0)::bigint,
            coalesce(sum(r.cost_usd), 0)::numeric,
            (count(*) FILTER (WHERE r.status = 'error'))::bigint,
            count(r.fallback_from)::bigint
"""
_PERCENTILES = """
            percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms),
            percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms),
            percentile_cont(0.5) WITHIN GROUP (ORDER BY r.ttft_ms),
            percentile_cont(0.95) WITHIN GROUP (ORDER BY r.ttft_ms)
"""
_SUM_COLUMNS = (
    "runs bigint, input_tokens bigint, output_tokens bigint, cost_usd numeric, errors bigint, fallbacks bigint"
)
_PCT_COLUMNS = "latency_p50 float8, latency_p95 float8, ttft_p50 float8, ttft_p95 float8"


_KPI_NAMES = ("runs", "input_tokens", "output_tokens", "cost_usd", "errors", "fallbacks",
              "latency_p50", "latency_p95", "ttft_p50", "ttft_p95")


def _kpi_columns(prefix: str, cond: str) -> str:
    f = f"FILTER (WHERE {cond})"
    exprs = (
        f"(count(*) {f})::bigint",
        f"coalesce(sum(r.input_tokens) {f}, 0)::bigint",
        f"coalesce(sum(r.output_tokens) {f}, 0)::bigint",
        f"coalesce(sum(r.cost_usd) {f}, 0)::numeric",
        f"(count(*) FILTER (WHERE r.status = 'error' AND {cond}))::bigint",
        f"(count(r.fallback_from) {f})::bigint",
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY r.latency_ms) {f}",
        f"percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) {f}",
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY r.ttft_ms) {f}",
        f"percentile_cont(0.95) WITHIN GROUP (ORDER BY r.ttft_ms) {f}",
    )
    return ",\n                ".join(f"{e} AS {prefix}{n}" for e, n in zip(exprs, _KPI_NAMES, strict=True))


def _kpis() -> str:
    # The previous period [p_prev_start, p_start) and the current one [p_start, p_end) from one scan
    # and one plain aggregate with FILTER clauses (no sort by period), then one row per period.
    where = _WHERE.replace("r.created_at >= p_start", "r.created_at >= p_prev_start")
    cur = ", ".join(f"k.c_{n}" for n in _KPI_NAMES)
    prev = ", ".join(f"k.p_{n}" for n in _KPI_NAMES)
    return f"""
    CREATE OR REPLACE FUNCTION app.analytics_admin_kpis(p_prev_start timestamptz, {FILTER_ARGS})
    RETURNS TABLE (period text, {_SUM_COLUMNS}, {_PCT_COLUMNS})
    {_HEADER}
        RETURN QUERY
        WITH k AS (
            SELECT {_kpi_columns("c_", "r.created_at >= p_start")},
                {_kpi_columns("p_", "r.created_at < p_start")}
            FROM public.agent_runs r
            WHERE {where}
        )
        SELECT 'current'::text, {cur} FROM k
        UNION ALL
        SELECT 'previous'::text, {prev} FROM k;
    {_FOOTER}
    """


def _series() -> str:
    return f"""
    CREATE OR REPLACE FUNCTION app.analytics_admin_series(p_granularity text, {FILTER_ARGS})
    RETURNS TABLE (bucket timestamp, provider text, {_SUM_COLUMNS})
    {_HEADER}{_GRANULARITY_CHECK}
        RETURN QUERY
        SELECT date_trunc(p_granularity, r.created_at AT TIME ZONE 'UTC'), r.provider::text,
        {_SUMS}
        FROM public.agent_runs r
        WHERE {_WHERE}
        GROUP BY 1, 2
        ORDER BY 1, 2;
    {_FOOTER}
    """


def _quality() -> str:
    return f"""
    CREATE OR REPLACE FUNCTION app.analytics_admin_quality(p_granularity text, {FILTER_ARGS})
    RETURNS TABLE (bucket timestamp, {_SUM_COLUMNS}, {_PCT_COLUMNS})
    {_HEADER}{_GRANULARITY_CHECK}
        RETURN QUERY
        SELECT date_trunc(p_granularity, r.created_at AT TIME ZONE 'UTC'),
        {_SUMS}, {_PERCENTILES}
        FROM public.agent_runs r
        WHERE {_WHERE}
        GROUP BY 1
        ORDER BY 1;
    {_FOOTER}
    """


def _usage() -> str:
    # Per user (user_total = true) and per user x provider x model, from one scan (grouping sets).
    # Aggregate by user id first, then join the (small) users table for the e-mail address.
    return f"""
    CREATE OR REPLACE FUNCTION app.analytics_admin_usage({FILTER_ARGS})
    RETURNS TABLE (user_id uuid, email text, user_total boolean, provider text, model text,
                   {_SUM_COLUMNS})
    {_HEADER}
        RETURN QUERY
        WITH agg AS (
            SELECT r.user_id AS uid, grouping(r.provider, r.model) = 3 AS user_total,
                   r.provider::text AS provider, r.model::text AS model,
                   count(*)::bigint AS c,
                   coalesce(sum(r.input_tokens), 0)::bigint AS i,
                   coalesce(sum(r.output_tokens), 0)::bigint AS o,
                   coalesce(sum(r.cost_usd), 0)::numeric AS cost,
                   (count(*) FILTER (WHERE r.status = 'error'))::bigint AS e,
                   count(r.fallback_from)::bigint AS f
            FROM public.agent_runs r
            WHERE {_WHERE}
            GROUP BY GROUPING SETS ((r.user_id), (r.user_id, r.provider, r.model))
        )
        SELECT a.uid, u.email::text, a.user_total, a.provider, a.model, a.c, a.i, a.o, a.cost, a.e, a.f
        FROM agg a JOIN public.users u ON u.id = a.uid
        ORDER BY a.cost DESC, a.c DESC, u.email, a.user_total DESC, a.provider, a.model;
    {_FOOTER}
    """


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.create_index("ix_agent_runs_created_at", "agent_runs", ["created_at"])
        return
    op.drop_index("ix_agent_runs_user_id_created_at", table_name="agent_runs")
    op.create_index("ix_agent_runs_user_id_created_at", "agent_runs", ["user_id", "created_at"],
                    postgresql_include=USER_INCLUDE)
    op.create_index("ix_agent_runs_created_at", "agent_runs", ["created_at"], postgresql_include=RANGE_INCLUDE)
    for sql in (_kpis(), _series(), _quality(), _usage()):
        op.execute(sql)
    for name, args in FUNCTIONS.items():
        op.execute(f"REVOKE ALL ON FUNCTION app.{name}({args}) FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION app.{name}({args}) TO {APP_ROLE}")
    for table in DEFINER_POLICY_TABLES:
        op.execute(
            f"""
            DO $$ BEGIN
                IF NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) THEN
                    EXECUTE format('CREATE POLICY {table}_analytics_definer ON public.{table} '
                                   'FOR SELECT TO %I USING (true)', current_user);
                END IF;
            END $$;
            """
        )


def downgrade() -> None:
    op.drop_index("ix_agent_runs_created_at", table_name="agent_runs")
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_agent_runs_user_id_created_at", table_name="agent_runs")
    op.create_index("ix_agent_runs_user_id_created_at", "agent_runs", ["user_id", "created_at"])
    for table in DEFINER_POLICY_TABLES:
        op.execute(f"DROP POLICY IF EXISTS {table}_analytics_definer ON public.{table}")
    for name, args in FUNCTIONS.items():
        op.execute(f"DROP FUNCTION IF EXISTS app.{name}({args})")
