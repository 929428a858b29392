"""Analytics: cached input tokens counted, and runs of unknown cost counted instead of hidden.

Two figures of the admin dashboard (``app.analytics_admin_dashboard``, migrations 0004 and 0006)
were incomplete:

* **Tokens** summed ``input_tokens`` and ``output_tokens`` only. ``input_tokens`` excludes cached
  input and cache writes (they are priced at their own rates), so a workload served from the
  provider's prompt cache looked almost free of tokens, while the daily token quota (migration 0005)
  counts all four. New column ``cache_tokens``: the sum of ``cached_input_tokens`` and
  ``cache_write_tokens``; the app's Tokens figure is input + cache + output, as the quota counts.
* **Cost** summed ``cost_usd`` with NULL as 0. A run whose cost is unknown -- its model is not in
  ``pricing.toml``, or its answer was cut before the provider reported the output tokens -- added
  $0 with no sign that the sum is incomplete. New column ``unknown_cost_runs``: runs that used
  tokens (input or output reported) but have no cost. The app says how many are left out.

The function is rebuilt from migration 0006's builder (0004's with 0006's two fragments), with the
two sums appended to every aggregate and the two columns added to the result. A function's result
columns cannot change in place, so it is dropped and created again, with the same grants.

The analytics read ``agent_runs`` through covering indexes (migration 0003: ``INCLUDE`` the
figures' columns), so a page load is an index-only scan. Summing two more columns without them in
the index turned the admin view into heap reads: 612 ms -> 1,410 ms on 1,000,000 runs. Both indexes
are rebuilt with ``cached_input_tokens`` and ``cache_write_tokens`` included (inside the migration's
transaction: writes to ``agent_runs`` wait while they build, 2.3 s for 1,000,000 runs here).

Downgrade restores 0006's function and 0003's indexes. SQLite has no functions or included
columns: nothing to do there.

Revision ID: 0007
Revises: 0006
"""
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXTRA_SUMS = """,
                   coalesce(sum(coalesce(r.cached_input_tokens, 0) + coalesce(r.cache_write_tokens, 0)), 0)::bigint
                       AS cache_tokens,
                   (count(*) FILTER (WHERE r.cost_usd IS NULL
                                     AND (r.input_tokens IS NOT NULL OR r.output_tokens IS NOT NULL)))::bigint
                       AS unknown_cost_runs"""
RESULT_0006 = "errors bigint, fallbacks bigint,"
RESULT = "errors bigint, fallbacks bigint, cache_tokens bigint, unknown_cost_runs bigint,"
SELECT_0006 = "f.fallbacks, f.latency_p50"
SELECT = "f.fallbacks, f.cache_tokens, f.unknown_cost_runs, f.latency_p50"


CACHE_COLUMNS = ["cached_input_tokens", "cache_write_tokens"]


def _revision(filename: str) -> ModuleType:
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"advisor_migration_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _revision_0006() -> ModuleType:
    return _revision("0006_analytics_definitions.py")


def _covering_indexes(extra: list[str]) -> None:
    """(Re)build 0003's two covering indexes with ``extra`` columns appended to their INCLUDE."""
    m = _revision("0003_analytics.py")
    for name, keys, include in (
        ("ix_agent_runs_user_id_created_at", ["user_id", "created_at"], m.USER_INCLUDE),
        ("ix_agent_runs_created_at", ["created_at"], m.RANGE_INCLUDE),
    ):
        op.drop_index(name, table_name="agent_runs")
        op.create_index(name, "agent_runs", keys, postgresql_include=[*include, *extra])


def _recreate(sql: str, arg_types: str, app_role: str) -> None:
    op.execute(f"DROP FUNCTION IF EXISTS app.analytics_admin_dashboard({arg_types})")
    op.execute(sql)
    op.execute(f"REVOKE ALL ON FUNCTION app.analytics_admin_dashboard({arg_types}) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION app.analytics_admin_dashboard({arg_types}) TO {app_role}")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    m = _revision_0006().dashboard_builder()
    m._SUMS = m._SUMS + EXTRA_SUMS
    sql = m._dashboard()
    assert sql.count(RESULT_0006) == 1 and sql.count(SELECT_0006) == 1
    sql = sql.replace(RESULT_0006, RESULT).replace(SELECT_0006, SELECT)
    _recreate(sql, m.ARG_TYPES, m.APP_ROLE)
    _covering_indexes(CACHE_COLUMNS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    m = _revision_0006().dashboard_builder()
    _recreate(m._dashboard(), m.ARG_TYPES, m.APP_ROLE)
    _covering_indexes([])
