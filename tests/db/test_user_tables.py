"""The catalogue of user-owned tables is read from the live schema: a table a later migration adds is
exported and deleted with no code change (C17, C18)."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import text

from core.deletion import delete_user
from core.export import export_user_data
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
