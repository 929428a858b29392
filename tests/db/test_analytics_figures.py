"""core.analytics.figures: what the figures read is what the covering indexes carry, never content."""

from __future__ import annotations

from sqlalchemy import text

from core.analytics.admin import ADMIN_PARTS
from core.analytics.dashboard import DASHBOARD_PARTS
from core.analytics.figures import columns_read
from core.analytics.statements import PROMPT_VERSIONS, Bounds, Part, figures_statement
from core.db import engine_for

FILTERS_AND_KEYS = {"created_at", "user_id", "provider", "model", "status"}
# per group of parts: the indexes (across users, per user) that must carry every column they read
INDEXES = {
    "figures": ("ix_agent_runs_created_at", "ix_agent_runs_user_id_created_at"),
    "prompt_versions": ("ix_agent_runs_versions_created_at", "ix_agent_runs_versions_user_id_created_at"),
}


def _read(parts: tuple[Part, ...]) -> set[str]:
    """Every column of agent_runs that the statement of ``parts`` reads."""
    bounds = Bounds.bound(lists=("providers", "models", "statuses"), scoped=True)
    return columns_read(figures_statement(parts, bounds=bounds, dialect="postgresql"))


def _groups() -> dict[str, set[str]]:
    parts = set(DASHBOARD_PARTS) | set(ADMIN_PARTS)
    versions = {p for p in parts if p.view == PROMPT_VERSIONS}
    assert versions  # both pages show the prompt versions
    return {
        "figures": _read(tuple(parts - versions)),
        "prompt_versions": _read(tuple(versions)),
    }


def test_figures_read_no_message_content():
    groups = _groups()
    read = groups["figures"] | groups["prompt_versions"]
    assert {"created_at", "status", "latency_ms", "cost_usd"} <= read
    # the prompt is known by its hash and atom versions only; a message, an answer never
    assert {"prompt_sha256", "atom_versions", "feedback", "superseded_by"} <= groups["prompt_versions"]
    assert not {"user_message", "output", "request_id", "feedback_comment"} & read
    assert not {"prompt_sha256", "atom_versions"} & groups["figures"]


def test_every_column_the_figures_read_is_in_their_covering_indexes(pg_url):
    """The analytics read ``agent_runs`` by index-only scans of covering indexes (migrations 0003,
    0007, and 0012 for the prompt versions). A figure that reads a column missing from them falls
    back to heap reads, which made the admin view several times slower."""
    groups = _groups()
    assert {"cached_input_tokens", "cache_write_tokens", "cost_usd", "latency_ms"} <= groups["figures"]
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
    for group, names in INDEXES.items():
        read = groups[group] | FILTERS_AND_KEYS
        for name in names:
            assert read <= set(covered[name]), (name, sorted(read - set(covered[name])))
