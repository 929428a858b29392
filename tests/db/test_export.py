"""GDPR export (C17) on SQLite and PostgreSQL: every row of the user, nothing of anyone else, files
that parse back to the stored values, a CSV safe to open in a spreadsheet, and a stream that stays
flat in memory.

The export is checked against the database read directly (``tests.db.user_data``), not through
``core.export``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import struct
import tracemalloc
import uuid
import zipfile
import zlib
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

import models
from core import db as core_db
from core.db import NotFound, system_session, user_session
from core.deletion import delete_user
from core.export import CHUNK_BYTES, export_user_data, iter_export_zip
from core.export_values import csv_cell
from models import AgentRun, UserProfile
from models.types import utcnow
from tests.db.user_data import (
    TRICKY,
    counts_for,
    db_rows,
    exported_rows,
    owned_tables,
    rows_holding,
    same,
    seed_two_users,
    unzip,
)
from tests.factories import fill_user, make_user


@pytest.fixture
def two_users(any_db_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    return seed_two_users()


def test_export_holds_every_row_of_the_user_with_equal_values(two_users):
    a, _ = two_users
    files = unzip(export_user_data(user_id=a))
    exported = exported_rows(files)
    assert set(exported) == set(owned_tables())  # every user-owned table of the catalogue
    for table in owned_tables():
        stored = db_rows(table, a)
        assert stored, table
        pk = [c.name for c in models.metadata.tables[table].primary_key.columns]
        got = {tuple(str(row[c]) for c in pk): row for row in exported[table]}
        assert len(got) == len(exported[table]) == len(stored), table
        for row in stored:
            out = got[tuple(str(row[c]) for c in pk)]
            expected_cols = set(row) - ({"password_hash"} if table == "users" else set())
            assert set(out) == expected_cols, table
            for col in expected_cols:
                assert same(out[col], row[col]), (table, col, out[col], row[col])
    # an edited or regenerated turn: the replaced run is exported with the id of its replacement
    runs = {r["id"]: r for r in exported["agent_runs"]}
    [replaced] = [r for r in runs.values() if r["superseded_by"] is not None]
    assert runs[replaced["superseded_by"]]["user_message"].endswith("message 0 edited")


def test_export_leaves_out_the_password_hash_and_says_so(two_users):
    a, _ = two_users
    stored_hash = db_rows("users", a)[0]["password_hash"]
    assert stored_hash and stored_hash.startswith("$argon2")
    data = export_user_data(user_id=a)
    files = unzip(data)
    assert "password_hash" not in json.loads(files["profile.json"])["user"]
    for content in files.values():
        assert stored_hash.encode() not in content
    assert "password_hash" in files["README.txt"].decode()
    assert json.loads(files["manifest.json"])["excluded_columns"] == {"users": ["password_hash"]}


TEXT_COLUMNS = ("email", "title", "name", "user_message", "output", "request_id", "oidc_subject")


def _values_of(user_id: uuid.UUID) -> set[str]:
    out: set[str] = set()
    for table in owned_tables():
        for row in db_rows(table, user_id):
            for col, value in row.items():
                if isinstance(value, uuid.UUID):  # ids, user_id, conversation_id
                    out.update({str(value), value.hex})
                elif col in TEXT_COLUMNS and value:
                    out.add(value)
    return out


def test_export_holds_nothing_of_another_user(two_users):
    a, b = two_users
    data = export_user_data(user_id=a)
    files = unzip(data)
    b_values = _values_of(b) | {"bravomark"}
    assert len(b_values) > 15
    decompressed = b"".join(files.values())
    # the raw stream with each deflated member inflated (independent of zipfile's reader)
    inflated = b""
    zf = zipfile.ZipFile(io.BytesIO(data))
    for info in zf.infolist():
        name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
        start = info.header_offset + 30 + name_len + extra_len
        raw = data[start:start + info.compress_size]
        inflated += zlib.decompress(raw, -15) if info.compress_type == zipfile.ZIP_DEFLATED else raw
    assert inflated == decompressed
    for value in b_values:
        needle = value.encode()
        assert needle not in data, value
        assert needle not in decompressed, value
    assert b"alphamark" in decompressed  # the check can see values when they are there


def test_manifest_counts_and_hashes_verify(two_users):
    a, _ = two_users
    files = unzip(export_user_data(user_id=a))
    manifest = json.loads(files["manifest.json"])
    assert manifest["schema_version"] == core_db.current_revision()
    assert manifest["user_id"] == str(a)
    assert abs(datetime.fromisoformat(manifest["exported_at"]) - utcnow()) < timedelta(minutes=5)
    assert manifest["row_counts"] == counts_for(a)
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    exported = exported_rows(files)
    for name, meta in manifest["files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == meta["sha256"], name
        assert len(files[name]) == meta["bytes"], name
    for table, names in manifest["tables"].items():
        assert names, table
        for name in names:
            assert manifest["files"][name]["rows"] >= len(exported[table])
    assert manifest["files"]["agent_runs.jsonl"]["rows"] == manifest["row_counts"]["agent_runs"] == 8
    assert manifest["files"]["agent_runs.csv"]["rows"] == 8


def test_csv_parses_back_equal_to_jsonl(two_users):
    a, _ = two_users
    files = unzip(export_user_data(user_id=a))
    raw = files["agent_runs.csv"].decode("utf-8")
    assert raw.endswith("\r\n") and "\r\n" in raw.split("\n", 1)[0] + "\n"
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    header, body = rows[0], rows[1:]
    jsonl = [json.loads(line) for line in files["agent_runs.jsonl"].decode().splitlines()]
    assert len(body) == len(jsonl) == 8
    assert any(TRICKY in r["user_message"] for r in jsonl)
    for cells, obj in zip(body, jsonl, strict=True):
        assert header == list(obj)
        assert len(cells) == len(header)
        for name, cell in zip(header, cells, strict=True):
            value = obj[name]
            if isinstance(value, list):
                assert json.loads(cell) == value
            else:
                assert cell == csv_cell(value), name
                assert cell == ("" if value is None else str(value).lower() if isinstance(value, bool)
                                else str(value))


def test_readme_describes_every_file_and_field(two_users):
    a, _ = two_users
    files = unzip(export_user_data(user_id=a))
    readme = files["README.txt"].decode()
    for name in files:
        if name != "README.txt":
            assert name in readme, name
    assert "(no description yet)" not in readme
    for table in owned_tables():
        for col in db_rows(table, a)[0]:
            if col != "password_hash":
                assert f"  {col}: " in readme, (table, col)


def test_export_streams_into_a_non_seekable_stream_and_reports_progress(two_users):
    a, _ = two_users

    class Pipe:
        def __init__(self) -> None:
            self.parts: list[bytes] = []

        def write(self, b: bytes) -> int:
            self.parts.append(bytes(b))
            return len(b)

    pipe = Pipe()
    seen: list[tuple[int, int]] = []
    size = export_user_data(user_id=a, out=pipe, progress=lambda d, t: seen.append((d, t)))  # type: ignore[call-overload]
    data = b"".join(pipe.parts)
    assert size == len(data)
    assert unzip(data)["profile.json"]
    total = sum(counts_for(a).values()) + 8  # runs are written twice
    assert seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_export_of_unknown_user_is_refused(any_db_url):
    with pytest.raises(NotFound):
        export_user_data(user_id=uuid.uuid4())


@pytest.mark.usefixtures("pg_url")
def test_export_stream_closed_early_releases_the_transaction():
    a = make_user()
    fill_user(a, runs=50, marker="early")
    chunks = iter_export_zip(user_id=a)
    next(chunks)
    chunks.close()
    delete_user(user_id=a)  # would block on locks if the export transaction were still open
    assert rows_holding(a) == {}


def test_profile_row_absent_exports_null(any_db_url):
    a = make_user()
    files = unzip(export_user_data(user_id=a))
    assert json.loads(files["profile.json"])["profile"] is None
    assert json.loads(files["vibe_configs.json"]) == []
    assert files["agent_runs.csv"].decode().count("\r\n") == 1  # the header only
    assert json.loads(files["manifest.json"])["row_counts"]["agent_runs"] == 0
    with user_session(a) as s:
        s.add(UserProfile(user_id=a, role="CTO"))
    assert json.loads(unzip(export_user_data(user_id=a))["profile.json"])["profile"]["role"] == "CTO"


# --------------------------------------------------------------------------------------------
# a CSV safe to open in a spreadsheet; JSON exact
# --------------------------------------------------------------------------------------------
FORMULAS = ["=1+1", "+SUM(1)", "-2", "@x", "\tTAB", "\rCR", '=HYPERLINK("http://evil.example","x")']


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised_and_json_stays_exact(any_db_url):
    user = make_user()
    ids = fill_user(user, runs=0, marker="formulas")
    with system_session() as s:  # finished runs: a user session only starts runs as pending
        for i, text in enumerate(FORMULAS):
            s.add(AgentRun(user_id=user, conversation_id=ids["conversation"], user_message=text,
                           output=f"safe answer {i}", status="ok", created_at=utcnow() + timedelta(seconds=i),
                           request_id=f"formula{i}"))
    files = unzip(export_user_data(user_id=user))

    runs = [json.loads(line) for line in files["agent_runs.jsonl"].decode().splitlines()]
    assert [r["user_message"] for r in runs] == FORMULAS  # JSON: the exact text

    rows = list(csv.DictReader(io.StringIO(files["agent_runs.csv"].decode(), newline="")))
    cells = [r["user_message"] for r in rows]
    assert cells[:4] == ["'=1+1", "'+SUM(1)", "'-2", "'@x"]
    assert cells == ["'" + text for text in FORMULAS]
    assert [r["output"] for r in rows] == [f"safe answer {i}" for i in range(len(FORMULAS))]  # others as they are
    assert "apostrophe" in files["README.txt"].decode()


# --------------------------------------------------------------------------------------------
# streaming: memory stays flat as a user's runs grow, and bytes come out as rows are read
# --------------------------------------------------------------------------------------------
WORDS = ["latency", "budget", "rollout", "migration", "hiring", "roadmap", "incident", "pricing", "churn"]


def seed_runs(pg_url: str, user_id: uuid.UUID, runs: int) -> None:
    """``runs`` runs of ~2 KB text each for ``user_id`` (COPY, as the table owner)."""
    rng = random.Random(runs)
    texts = [" ".join(rng.choice(WORDS) for _ in range(300))[:2000] for _ in range(50)]
    conv = uuid.uuid4()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with psycopg.connect(pg_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        conn.execute("INSERT INTO conversations (id, user_id, title, agent, created_at) "
                     "VALUES (%s, %s, 'bulk', 'general', %s)", (conv, user_id, start))
        with conn.cursor().copy("COPY agent_runs (id, user_id, conversation_id, agent, created_at, "
                                "user_message, output, status, request_id) FROM STDIN") as copy:
            for i in range(runs):
                copy.write_row((uuid.uuid4(), user_id, conv, "general", start + timedelta(seconds=i),
                                f"{i} {texts[i % 50][:500]}", texts[(i + 7) % 50], "ok", f"r{i}"))


def measure(user_id: uuid.UUID) -> tuple[int, int, int, int]:
    """(peak traced bytes, total ZIP bytes, number of chunks, largest chunk) of one export."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        total = chunks = largest = 0
        for chunk in iter_export_zip(user_id=user_id):
            total += len(chunk)
            chunks += 1
            largest = max(largest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, total, chunks, largest


@pytest.mark.pg
def test_export_memory_stays_flat_as_runs_grow(pg_url):
    small, large = make_user(), make_user()
    seed_runs(pg_url, small, 2_000)
    seed_runs(pg_url, large, 20_000)
    measure(small)  # warm-up: imports, reflection caches, compiled statements

    peak_small, size_small, _, _ = measure(small)
    peak_large, size_large, chunks, largest = measure(large)

    assert size_large > 8 * size_small  # ten times the data really went through
    assert size_large > 20 * CHUNK_BYTES
    # Ten times the rows (~80 MB of JSON + CSV) may not cost ten times the memory: flat, give or take.
    assert peak_large < 2 * peak_small + 4 * 2**20, (peak_small, peak_large)
    assert peak_large < 40 * 2**20, peak_large
    # and the bytes come out while rows are read, in bounded chunks
    assert chunks > size_large // (4 * CHUNK_BYTES)
    assert largest < 4 * CHUNK_BYTES + 2**20


@pytest.mark.pg
def test_export_closed_in_the_middle_of_the_runs_ends_the_query(pg_url):
    user = make_user()
    seed_runs(pg_url, user, 5_000)
    chunks = iter_export_zip(user_id=user)
    read = 0
    for chunk in chunks:  # well into agent_runs.jsonl (~10 MB of lines), rows still being read
        read += len(chunk)
        if read > 4 * CHUNK_BYTES:
            break
    chunks.close()
    admin = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(admin) as conn:
        busy = conn.execute(
            "SELECT state, query FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state <> 'idle'"
        ).fetchall()
    assert busy == []
    assert sum(len(c) for c in iter_export_zip(user_id=user)) > read  # the pool's connection works
