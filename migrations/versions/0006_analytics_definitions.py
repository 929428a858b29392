"""Analytics definitions: latency percentiles over completed answers; a fallback is an answer.

The admin dashboard's function (``app.analytics_admin_dashboard``, migration 0004) counted every run
with ``fallback_from`` set as a fallback, including runs on which every provider failed (they fell
back to nothing), and took the latency percentiles over every run, so fast failures (an auth error
after 4 ms) pulled p50 down. Now, as in ``core.analytics`` (the per-user view and SQLite):

* fallbacks = runs with ``fallback_from`` set whose status is not ``error``;
* latency p50/p95 = ``percentile_cont`` over runs with ``status = 'ok'`` (time to first token is
  unchanged: over every run that had a first token).

The function is rebuilt from migration 0004's own builder with those two fragments replaced, so
its signature, result columns, grants and plan settings stay as they were. SQLite has no functions:
nothing to do there.

Revision ID: 0006
Revises: 0005
"""
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FALLBACKS_0004 = "count(r.fallback_from)::bigint AS fallbacks"
FALLBACKS = "(count(r.fallback_from) FILTER (WHERE r.status <> 'error'))::bigint AS fallbacks"
LATENCY_0004 = "WITHIN GROUP (ORDER BY r.latency_ms) AS"
LATENCY = "WITHIN GROUP (ORDER BY r.latency_ms) FILTER (WHERE r.status = 'ok') AS"


def _revision_0004() -> ModuleType:
    path = Path(__file__).with_name("0004_admin_dashboard.py")
    spec = importlib.util.spec_from_file_location("advisor_migration_0004", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard_builder() -> ModuleType:
    """Migration 0004's module with this revision's two fragments in place (0007 builds on it)."""
    m = _revision_0004()
    assert FALLBACKS_0004 in m._SUMS and m._PERCENTILES.count(LATENCY_0004) == 2
    m._SUMS = m._SUMS.replace(FALLBACKS_0004, FALLBACKS)
    m._PERCENTILES = m._PERCENTILES.replace(LATENCY_0004, LATENCY)
    return m


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(dashboard_builder()._dashboard())  # CREATE OR REPLACE: same signature and columns, grants kept


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_revision_0004()._dashboard())
