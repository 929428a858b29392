"""The catalogue of user-owned tables is read from the live schema: a table a later migration adds is
exported and deleted with no code change (C17, C18)."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from core.deletion import delete_user
from core.export import export_user_data
from core.user_tables import user_data_tables
from tests.db.user_data import add_notes_table, db_engine, seed_two_users, unzip


@pytest.fixture
def two_users(any_db_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    return seed_two_users()


def test_a_new_user_owned_table_is_exported_and_deleted(two_users):
    a, b = two_users
    add_notes_table([a, b])
    files = unzip(export_user_data(user_id=a))
    assert "extra/notes.jsonl" in files
    notes = [json.loads(line) for line in files["extra/notes.jsonl"].decode().splitlines()]
    assert [n["body"] for n in notes] == [f"note of {a}"]
    assert str(b).encode() not in b"".join(files.values())
    assert json.loads(files["manifest.json"])["row_counts"]["notes"] == 1
    receipt = delete_user(user_id=a)
    assert receipt.row_counts["notes"] == 1
    with db_engine().connect() as conn:
        bodies = conn.execute(text("SELECT body FROM notes")).scalars().all()
    assert bodies == [f"note of {b}"]


def test_the_search_index_is_derived_data_the_catalogue_skips(two_users):
    """PostgreSQL's generated ``search_tsv`` columns and SQLite's FTS5 tables (migration 0013) exist,
    yet the catalogue lists neither: the export holds no search vector, and deletion removes the
    user's search entries through the rows they index."""
    a, _b = two_users
    with db_engine().connect() as conn:
        dialect = conn.dialect.name
        tables = {t.name: t for t in user_data_tables(conn)}
        if dialect == "postgresql":
            generated = set(conn.execute(text(
                "SELECT table_name FROM information_schema.columns WHERE column_name = 'search_tsv' "
                "AND is_generated = 'ALWAYS'")).scalars())
            assert generated == {"agent_runs", "conversations"}
        else:
            fts = set(conn.execute(text(
                "SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL TABLE%fts5%'")).scalars())
            assert fts == {"agent_runs_fts", "conversations_fts"}
    assert {"agent_runs", "conversations"} <= set(tables)
    assert not [name for name in tables if "fts" in name]
    assert all("search_tsv" not in t.column_names for t in tables.values())
    files = unzip(export_user_data(user_id=a))
    assert b"search_tsv" not in b"".join(data for name, data in files.items() if name != "README.md")
    delete_user(user_id=a)
    with db_engine().connect() as conn:
        if dialect == "sqlite":
            left = conn.execute(text("SELECT count(*) FROM agent_runs_fts WHERE agent_runs_fts MATCH 'alphamark'"))
            assert left.scalar_one() == 0
            assert conn.execute(text(
                "SELECT count(*) FROM agent_runs_fts WHERE agent_runs_fts MATCH 'bravomark'")).scalar_one() > 0
        else:
            left = conn.execute(text(
                "SELECT count(*) FROM agent_runs WHERE search_tsv @@ plainto_tsquery('english', 'alphamark')"))
            assert left.scalar_one() == 0
