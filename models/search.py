"""The search index's schema objects (migration 0013): derived from the tables, not modelled.

PostgreSQL keeps a generated ``search_tsv`` column (and a GIN index on ``(user_id, search_tsv)``)
on ``conversations`` and ``agent_runs``; SQLite keeps FTS5 tables ``<table>_fts`` (and FTS5's own
shadow tables) in step by triggers. The database derives all of them from the text columns, so the
SQLModel tables leave them out and schema comparisons (Alembic autogenerate) skip them.
"""

from __future__ import annotations

from typing import Final

SEARCH_COLUMN: Final = "search_tsv"
SEARCHED_TABLES: Final = ("conversations", "agent_runs")
SEARCH_INDEXES: Final = frozenset(f"ix_{t}_search" for t in SEARCHED_TABLES)
FTS_TABLES: Final = frozenset(f"{t}_fts" for t in SEARCHED_TABLES)
# the tables FTS5 keeps beside each virtual table (external content: no "_content" of its own)
FTS5_SHADOW_SUFFIXES: Final = ("_data", "_idx", "_content", "_docsize", "_config")


def is_search_object(name: str | None, type_: str) -> bool:
    """True for a schema object of the search index (``type_`` as Alembic's ``include_object`` gets it)."""
    if name is None:
        return False
    if type_ == "column":
        return name == SEARCH_COLUMN
    if type_ == "index":
        return name in SEARCH_INDEXES
    if type_ == "table":
        return name in FTS_TABLES or any(name == f"{t}{s}" for t in FTS_TABLES for s in FTS5_SHADOW_SUFFIXES)
    return False


def include_in_schema_comparison(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Alembic's ``include_object`` hook: the search index's objects are not compared with the models."""
    return not (reflected and compare_to is None and is_search_object(name, type_))
