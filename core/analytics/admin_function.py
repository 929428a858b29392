"""The PostgreSQL function behind the administrators' dashboard, generated from the figures.

``app.analytics_admin_dashboard(p_prev_start, p_granularity, p_start, p_end, p_providers,
p_models, p_statuses)`` returns the rows of the combined statement of
``core.analytics.admin.ADMIN_PARTS``, compiled from the same figure definitions as every other
view.

Migrations never import this module: a migration that (re)creates the function runs a snapshot
of ``create_function_sql()`` kept in ``migrations/sql/<revision>_analytics_admin_dashboard.sql``
(migration 0009 is the first). A test checks that the newest snapshot is exactly what the figures
generate now, so changing a figure or a view of the admin dashboard fails until a new migration
creates the function from a new snapshot, written by::

    python -m core.analytics.admin_function <revision> > migrations/sql/<revision>_analytics_admin_dashboard.sql

* **Aggregates only**, never content: the statement reads only the figures' columns, and the
  function returns only tags, keys, e-mail addresses and figures.
* **Administrators only**: it runs with its owner's rights (SECURITY DEFINER, ``search_path``
  pinned to ``pg_catalog, public``, every object schema-qualified) and first checks that
  ``app.current_user_id()`` is an administrator, raising ``insufficient_privilege`` otherwise.
  EXECUTE is revoked from PUBLIC and granted to ``advisor_app`` by the migration.
* **One-shot plan**: the statement is a constant run by ``RETURN QUERY EXECUTE ... USING``, so it
  is planned for the actual values: filters left NULL fold away and the bucket CASE folds to the
  chosen granularity. Its parts are independent aggregates joined by UNION ALL, which PostgreSQL
  can run as one Parallel Append.
* **Settings**: ``work_mem`` large enough for the percentile sorts of a month of runs in memory;
  JIT off (compiling the aggregates costs more than it saves at this size); parallel workers
  allowed at a low setup cost.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Text, Uuid, column, table
from sqlalchemy.dialects import postgresql

from core.analytics.admin import ADMIN_PARTS
from core.analytics.figures import sql
from core.analytics.filters import GRANULARITIES
from core.analytics.statements import AGENT_RUNS, Bounds, figures_statement, result_columns

NAME = "app.analytics_admin_dashboard"
ARGUMENTS = (
    ("p_prev_start", "timestamptz"),
    ("p_granularity", "text"),
    ("p_start", "timestamptz"),
    ("p_end", "timestamptz"),
    ("p_providers", "text[]"),
    ("p_models", "text[]"),
    ("p_statuses", "text[]"),
)
ARGUMENT_TYPES = ", ".join(t for _, t in ARGUMENTS)
# inside the EXECUTEd statement, the USING values are $1..$7 in this order
PARAMETERS = Bounds(
    prev_start=sql("$1"),
    start=sql("$2"),
    end=sql("$3"),
    lists=(("providers", sql("$4")), ("models", sql("$5")), ("statuses", sql("$6"))),
    granularity=sql("$7"),
    null_list_means_any=True,
)
_USING = "p_prev_start, p_start, p_end, p_providers, p_models, p_statuses, p_granularity"
_RUNS = table("agent_runs", *(column(c.name, c.type) for c in AGENT_RUNS.c), schema="public")
_USERS = table("users", column("id", Uuid()), column("email", Text()), column("is_admin", Boolean()), schema="public")
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped


def statement_sql() -> str:
    """The admin dashboard's statement, with the function's parameters ``$1``..``$7``.

    Line breaks between the parts and before each column, for whoever reads the function's source.
    """
    statement = figures_statement(ADMIN_PARTS, bounds=PARAMETERS, dialect="postgresql", runs=_RUNS, users=_USERS)
    compiled = str(statement.compile(dialect=_DIALECT, compile_kwargs={"literal_binds": True}))
    return compiled.replace(" UNION ALL ", "\nUNION ALL\n").replace(", CAST(", ",\n    CAST(")


def function_body() -> str:
    granularities = ", ".join(f"'{g}'" for g in GRANULARITIES)
    return f"""
#variable_conflict use_column
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM public.users u WHERE u.id = app.current_user_id() AND u.is_admin
    ) THEN
        RAISE EXCEPTION 'analytics: administrator privileges required'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_granularity IS NULL OR p_granularity NOT IN ({granularities}) THEN
        RAISE EXCEPTION 'analytics: granularity must be one of {", ".join(GRANULARITIES)}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY EXECUTE $q$
{statement_sql()}
    $q$
    USING {_USING};
END
"""


def create_function_sql() -> str:
    """``CREATE FUNCTION`` for the admin dashboard (drop an older one first: its columns may differ)."""
    arguments = ", ".join(f"{name} {type_}" for name, type_ in ARGUMENTS)
    results = ",\n    ".join(
        f"{name} {type_.compile(dialect=_DIALECT)}" for name, type_ in result_columns(ADMIN_PARTS, email=True)
    )
    return f"""CREATE FUNCTION {NAME}({arguments})
RETURNS TABLE (
    {results}
)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
SET work_mem = '64MB'
SET jit = off
SET parallel_setup_cost = 100
AS $fn${function_body()}$fn$"""


def snapshot(revision: str) -> str:
    """The text of ``migrations/sql/<revision>_analytics_admin_dashboard.sql``."""
    return (
        f"-- app.analytics_admin_dashboard as migration {revision} created it, generated by\n"
        "-- core.analytics.admin_function.create_function_sql(). Migrations are history: never edited.\n"
        f"{create_function_sql()}\n"
    )


if __name__ == "__main__":
    import sys

    sys.stdout.write(snapshot(sys.argv[1]))
