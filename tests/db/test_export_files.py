"""Prepared exports on disk: complete archives under the data directory, nothing left after a failure,
and removed once expired or at a new start."""

from __future__ import annotations

import io
import json
import os
import time
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from core.db import NotFound
from core.export_files import EXPORT_FILE_LIFETIME, exports_dir, remove_export_files, write_export_file
from core.settings import get_settings
from tests.factories import fill_user, make_user


def test_a_prepared_export_is_a_complete_archive_under_the_data_directory(any_db_url):
    user = make_user()
    fill_user(user, runs=3, marker="onfile")
    seen: list[tuple[int, int]] = []
    prepared = write_export_file(user_id=user, progress=lambda done, total: seen.append((done, total)))

    assert prepared.path.parent == exports_dir() == get_settings().data_dir / "exports"
    assert str(user) not in prepared.path.name and user.hex not in prepared.path.name
    assert prepared.file_name.startswith("advisor-export-") and prepared.file_name.endswith(".zip")
    assert prepared.exists() and prepared.path.stat().st_size == prepared.size
    assert os.stat(prepared.path.parent).st_mode & 0o077 == 0  # only the app's user can list or read
    data = prepared.read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        assert json.loads(zf.read("manifest.json"))["row_counts"]["agent_runs"] == 3
    assert seen[-1][0] == seen[-1][1] > 0
    assert [p.name for p in prepared.path.parent.iterdir()] == [prepared.path.name]  # no partial file left

    prepared.remove()
    assert not prepared.exists()
    with pytest.raises(FileNotFoundError):
        prepared.read()


def test_a_failed_export_leaves_no_file(any_db_url):
    with pytest.raises(NotFound):
        write_export_file(user_id=uuid.uuid4())
    assert list(exports_dir().iterdir()) == []


def _age(path: Path, by: timedelta) -> None:
    then = time.time() - by.total_seconds()
    os.utime(path, (then, then))


def test_expired_exports_are_removed_and_a_new_start_removes_all(any_db_url):
    user = make_user()
    old, fresh = write_export_file(user_id=user), write_export_file(user_id=user)
    _age(old.path, EXPORT_FILE_LIFETIME + timedelta(minutes=1))
    left_behind = old.path.with_name("abandoned.part")  # an export cut short by a crash
    left_behind.write_bytes(b"PK")
    _age(left_behind, EXPORT_FILE_LIFETIME * 2)
    unrelated = old.path.with_name("notes.txt")
    unrelated.write_text("not an export")

    assert remove_export_files(older_than=EXPORT_FILE_LIFETIME) == 2
    assert not old.exists() and not left_behind.exists()
    assert fresh.exists() and unrelated.exists()

    assert remove_export_files() == 1  # at a start: every prepared export, however new
    assert not fresh.exists() and unrelated.exists()
    assert remove_export_files(Path(get_settings().data_dir) / "missing") == 0
