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
Downgrade restores 0006's function. SQLite has no functions: nothing to do there.

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


def _revision_0006() -> ModuleType:
    path = Path(__file__).with_name("0006_analytics_definitions.py")
    spec = importlib.util.spec_from_file_location("advisor_migration_0006", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    m = _revision_0006().dashboard_builder()
    _recreate(m._dashboard(), m.ARG_TYPES, m.APP_ROLE)
