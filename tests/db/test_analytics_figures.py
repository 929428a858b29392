"""core.analytics.figures: what the figures read is what the covering indexes carry, never content."""

from __future__ import annotations

from sqlalchemy import text

from core.analytics.admin import ADMIN_PARTS
from core.analytics.dashboard import DASHBOARD_PARTS
from core.analytics.figures import columns_read
from core.analytics.statements import Bounds, figures_statement
from core.db import engine_for


def _read() -> set[str]:
    """Every column of agent_runs that the user and admin dashboards' statements read."""
    bounds = Bounds.bound(lists=("providers", "models", "statuses"), scoped=True)
    return columns_read(
        figures_statement(DASHBOARD_PARTS, bounds=bounds, dialect="postgresql"),
        figures_statement(ADMIN_PARTS, bounds=bounds, dialect="postgresql"),
    )


def test_figures_read_no_message_content():
    read = _read()
    assert {"created_at", "status", "latency_ms", "cost_usd"} <= read
    assert not {"user_message", "output", "request_id", "prompt_sha256", "atom_versions"} & read


def test_every_column_the_figures_read_is_in_both_covering_indexes(pg_url):
    """The analytics read ``agent_runs`` by index-only scans of two covering indexes (migrations 0003
    and 0007). A figure that reads a column missing from them falls back to heap reads, which made
    the admin view several times slower."""
    read = _read()
    read |= {"created_at", "user_id", "provider", "model", "status"}  # the filters and groupings
    assert {"cached_input_tokens", "cache_write_tokens", "cost_usd", "latency_ms"} <= read
    with engine_for(pg_url).connect() as conn:
        covered: dict[str, list[str]] = dict(
            conn.execute(
                text(
                    "SELECT i.relname, array_agg(a.attname::text) FROM pg_index x "
                    "JOIN pg_class i ON i.oid = x.indexrelid "
                    "JOIN pg_attribute a ON a.attrelid = x.indexrelid "
                    "WHERE x.indrelid = 'agent_runs'::regclass GROUP BY i.relname"
                )
            ).all()
        )
    for name in ("ix_agent_runs_created_at", "ix_agent_runs_user_id_created_at"):
        assert read <= set(covered[name]), (name, sorted(read - set(covered[name])))
