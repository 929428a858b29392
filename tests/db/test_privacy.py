"""GDPR export and deletion (C17, C18) on SQLite and PostgreSQL.

The export is checked against the database read directly (not through ``core.privacy``); the
deletion by a scan of every column of every table for the user's id.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import struct
import uuid
import zipfile
import zlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import inspect, select, text, update
from sqlalchemy.engine import Engine

import models
from core import db as core_db
from core import limits
from core.accounts import AuthError, get_user, sign_in, sign_up
from core.db import NotFound, system_session, user_session
from core.privacy import csv_cell, delete_user, export_user_data, iter_export_zip, subject_hash
from core.settings import get_settings
from models import AgentRun, Conversation, DeletionRecord, UserProfile, VibeConfig
from models.schemas import SignInIn, SignUpIn
from models.types import utcnow
from tests.factories import fill_user, make_user

PASSWORD = "correct horse battery staple 9"
TRICKY = 'comma, "quotes", newline\nsecond line\r\nCRLF; tab\t; unicode: Grüße 数据 🚀'


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def seed_user(user_id: uuid.UUID, marker: str) -> None:
    """Rows in every table, with values that stress JSON and CSV, all tagged with ``marker``."""
    fill_user(user_id, runs=3, marker=marker)
    with system_session() as s:  # finished runs: a user session only starts runs as pending
        conv = Conversation(user_id=user_id, title=f"second {marker}", agent="board-update")
        s.add(conv)
        s.add(VibeConfig(user_id=user_id, name=f"calm {marker}", brevity=9, is_active=False))
        s.flush()
        start = utcnow() - timedelta(days=1)
        for i, status in enumerate(("ok", "error", "interrupted", "pending")):
            s.add(
                AgentRun(
                    user_id=user_id,
                    conversation_id=conv.id,
                    agent="board-update",
                    created_at=start + timedelta(minutes=i),
                    user_message=f"{marker} message {i}: {TRICKY}",
                    output=f"{marker} answer {i}: {TRICKY}" if status != "pending" else "",
                    status=status,
                    provider="openai",
                    model="gpt-test",
                    fallback_from="anthropic/claude" if i == 1 else None,
                    input_tokens=100 + i,
                    output_tokens=None if status == "pending" else 7,
                    cached_input_tokens=3,
                    cache_write_tokens=0,
                    cost_usd=Decimal("0.00000001") if i == 0 else Decimal("12.34567891"),
                    ttft_ms=250,
                    latency_ms=1200,
                    prompt_sha256=hashlib.sha256(marker.encode()).hexdigest(),
                    atom_versions=[["base", 1], [f"tone-{marker}", 2]],
                    request_id=f"req{marker}{i}"[:32],
                    error_code="server" if status == "error" else None,
                )
            )


@pytest.fixture
def two_users(any_db_url: str) -> tuple[uuid.UUID, uuid.UUID]:
    a = sign_up(SignUpIn(email=f"alpha-{uuid.uuid4().hex[:6]}@example.com", password=PASSWORD)).id
    b = make_user()
    seed_user(a, "alphamark")
    seed_user(b, "bravomark")
    users = models.metadata.tables["users"]
    with system_session() as s:
        # b is an admin too: a (the first account, so an admin) is then not the only admin and may leave
        s.execute(update(users).where(users.c.id == b).values(oidc_subject="sub-b", quota_tokens_per_day=77,
                                                              is_admin=True))
        s.execute(update(users).where(users.c.id == a).values(quota_cost_per_month_usd=Decimal("12.5")))
    return a, b


def _engine() -> Engine:
    return core_db.get_engine()


def owned_tables() -> dict[str, str]:
    """The test's own catalogue: table -> owner column (users.id, or a user_id column)."""
    with _engine().connect() as conn:
        insp = inspect(conn)
        out = {}
        for name in insp.get_table_names():
            cols = {c["name"] for c in insp.get_columns(name)}
            if name == "users":
                out[name] = "id"
            elif "user_id" in cols:
                out[name] = "user_id"
        return out


def db_rows(table: str, user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's rows read directly (as the table owner: no RLS), typed by the models."""
    t = models.metadata.tables[table]
    owner = t.c.id if table == "users" else t.c.user_id
    with _engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).where(owner == user_id))]


def counts_for(user_id: uuid.UUID) -> dict[str, int]:
    return {t: len(db_rows(t, user_id)) for t in owned_tables()}


def all_deletion_records() -> list[dict[str, Any]]:
    with _engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(DeletionRecord.__table__))]  # type: ignore[attr-defined]


def same(exported: Any, stored: Any) -> bool:
    """An exported JSON value equals the stored one (parsed back by its stored type)."""
    if stored is None or exported is None:
        return stored is None and exported is None
    if isinstance(stored, uuid.UUID):
        return uuid.UUID(exported) == stored
    if isinstance(stored, datetime):
        return datetime.fromisoformat(exported) == stored
    if isinstance(stored, date):
        return date.fromisoformat(exported) == stored
    if isinstance(stored, Decimal):
        return isinstance(exported, str) and Decimal(exported) == stored
    return type(exported) is type(stored) and exported == stored


def unzip(data: bytes) -> dict[str, bytes]:
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    return {name: zf.read(name) for name in zf.namelist()}


def exported_rows(files: dict[str, bytes]) -> dict[str, list[dict[str, Any]]]:
    profile = json.loads(files["profile.json"])
    out: dict[str, list[dict[str, Any]]] = {
        "users": [profile["user"]],
        "user_profiles": [profile["profile"]] if profile["profile"] is not None else [],
        "vibe_configs": json.loads(files["vibe_configs.json"]),
        "conversations": json.loads(files["conversations.json"]),
        "agent_runs": [json.loads(line) for line in files["agent_runs.jsonl"].decode().splitlines()],
    }
    for name, data in files.items():
        if name.startswith("extra/"):
            out[name.removeprefix("extra/").removesuffix(".jsonl")] = [
                json.loads(line) for line in data.decode().splitlines()
            ]
    return out


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
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
    assert manifest["files"]["agent_runs.jsonl"]["rows"] == manifest["row_counts"]["agent_runs"] == 7
    assert manifest["files"]["agent_runs.csv"]["rows"] == 7


def test_csv_parses_back_equal_to_jsonl(two_users):
    a, _ = two_users
    files = unzip(export_user_data(user_id=a))
    raw = files["agent_runs.csv"].decode("utf-8")
    assert raw.endswith("\r\n") and "\r\n" in raw.split("\n", 1)[0] + "\n"
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    header, body = rows[0], rows[1:]
    jsonl = [json.loads(line) for line in files["agent_runs.jsonl"].decode().splitlines()]
    assert len(body) == len(jsonl) == 7
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
    total = sum(counts_for(a).values()) + 7  # runs are written twice
    assert seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_export_of_unknown_user_is_refused(any_db_url):
    with pytest.raises(NotFound):
        export_user_data(user_id=uuid.uuid4())


def _add_notes_table(with_row_for: list[uuid.UUID]) -> None:
    """What a future migration might add: another table carrying user_id (grants + RLS on PG)."""
    engine = _engine()
    with engine.begin() as conn:
        uid_type = "uuid" if engine.dialect.name == "postgresql" else "CHAR(32)"
        conn.execute(text(f"CREATE TABLE notes (id {uid_type} PRIMARY KEY, "
                          f"user_id {uid_type} NOT NULL REFERENCES users(id), body TEXT NOT NULL)"))
        if engine.dialect.name == "postgresql":
            conn.execute(text("GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO advisor_app"))
            conn.execute(text("ALTER TABLE notes ENABLE ROW LEVEL SECURITY"))
            conn.execute(text("ALTER TABLE notes FORCE ROW LEVEL SECURITY"))
            conn.execute(text("CREATE POLICY notes_owner ON notes FOR ALL TO advisor_app "
                              "USING (user_id = (SELECT app.current_user_id())) "
                              "WITH CHECK (user_id = (SELECT app.current_user_id()))"))
        pg = engine.dialect.name == "postgresql"
        for uid in with_row_for:
            note_id = uuid.uuid4()
            conn.execute(text("INSERT INTO notes VALUES (:id, :uid, :body)"),
                         {"id": str(note_id) if pg else note_id.hex,
                          "uid": str(uid) if pg else uid.hex, "body": f"note of {uid}"})


def test_a_new_user_owned_table_is_exported_and_deleted(two_users):
    a, b = two_users
    _add_notes_table([a, b])
    files = unzip(export_user_data(user_id=a))
    assert "extra/notes.jsonl" in files
    notes = [json.loads(line) for line in files["extra/notes.jsonl"].decode().splitlines()]
    assert [n["body"] for n in notes] == [f"note of {a}"]
    assert str(b).encode() not in b"".join(files.values())
    assert json.loads(files["manifest.json"])["row_counts"]["notes"] == 1
    receipt = delete_user(user_id=a)
    assert receipt.row_counts["notes"] == 1
    with _engine().connect() as conn:
        bodies = conn.execute(text("SELECT body FROM notes")).scalars().all()
    assert bodies == [f"note of {b}"]


# --------------------------------------------------------------------------------------------
# deletion
# --------------------------------------------------------------------------------------------
def rows_holding(user_id: uuid.UUID) -> dict[str, int]:
    """Scan every column of every table for the id (dashed text, or the 32-hex SQLite form)."""
    found: dict[str, int] = {}
    with _engine().connect() as conn:
        insp = inspect(conn)
        for table in insp.get_table_names():
            for col in insp.get_columns(table):
                q = text(f'SELECT count(*) FROM "{table}" WHERE CAST("{col["name"]}" AS TEXT) IN (:d, :h)')
                n = conn.execute(q, {"d": str(user_id), "h": user_id.hex}).scalar_one()
                if n:
                    found[f"{table}.{col['name']}"] = n
    return found


def snapshot(user_id: uuid.UUID) -> dict[str, list[dict[str, Any]]]:
    return {t: sorted(db_rows(t, user_id), key=repr) for t in owned_tables()}


def test_delete_user_leaves_no_row_with_the_id_and_keeps_others(two_users):
    a, b = two_users
    email = db_rows("users", a)[0]["email"]
    a_counts = counts_for(a)
    assert rows_holding(a)  # the scan finds the id before
    b_before = snapshot(b)
    records_before = all_deletion_records()

    receipt = delete_user(user_id=a)

    assert rows_holding(a) == {}
    assert snapshot(b) == b_before
    assert receipt.row_counts == a_counts
    assert receipt.limits_cleared
    records = all_deletion_records()
    assert len(records) == len(records_before) + 1
    (record,) = [r for r in records if r["id"] == receipt.record_id]
    key = get_settings().deletion_salt.get_secret_value().encode()
    assert record["subject_hash"] == hmac.new(key, str(a).encode(), hashlib.sha256).hexdigest()
    assert record["subject_hash"] == subject_hash(a) == receipt.subject_hash
    assert record["row_counts"] == a_counts
    dumped = json.dumps(record, default=str)
    for needle in (email, email.split("@")[0], "alphamark", "message", str(a), a.hex):
        assert needle not in dumped


def test_deleted_user_can_no_longer_sign_in(two_users):
    a, _ = two_users
    email = db_rows("users", a)[0]["email"]
    assert sign_in(SignInIn(email=email, password=PASSWORD), session_key="s1").id == a
    delete_user(user_id=a)
    with pytest.raises(AuthError):
        sign_in(SignInIn(email=email, password=PASSWORD), session_key="s2")
    assert get_user(a) is None


def test_delete_clears_the_users_rate_limit_keys(two_users):
    a, _ = two_users
    email = db_rows("users", a)[0]["email"]
    limits.reset_limiter_cache()
    for i in range(get_settings().signin_attempts_per_window):
        limits.take_signin_attempt(email=email, session_key=f"k{i}")
    with pytest.raises(limits.LimitExceeded):
        limits.take_signin_attempt(email=email, session_key="fresh")
    delete_user(user_id=a)
    limits.take_signin_attempt(email=email, session_key="fresh")
    limits.reset_limiter_cache()


def test_a_failure_in_the_middle_rolls_everything_back(two_users):
    a, b = two_users
    before_a, before_b = snapshot(a), snapshot(b)
    records_before = all_deletion_records()
    deleted: list[str] = []

    def fail_after_first(table: str, rows: int) -> None:
        deleted.append(table)
        assert rows > 0
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        delete_user(user_id=a, on_table_deleted=fail_after_first)
    assert deleted == ["agent_runs"]  # children first
    assert snapshot(a) == before_a
    assert snapshot(b) == before_b
    assert all_deletion_records() == records_before
    assert unzip(export_user_data(user_id=a))  # still all there


def test_deleting_an_unknown_or_deleted_user_is_refused(two_users):
    a, _ = two_users
    delete_user(user_id=a)
    records = all_deletion_records()
    with pytest.raises(NotFound):
        delete_user(user_id=a)
    with pytest.raises(NotFound):
        delete_user(user_id=uuid.uuid4())
    assert all_deletion_records() == records


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


def test_the_only_admin_cannot_leave_others_without_an_admin(any_db_url: str):
    """Deleting the only admin while other accounts exist is refused (nothing deleted): nobody could
    ever be made admin again. With a second admin, or as the only account, it goes through."""
    from core.privacy import LastAdmin

    admin, member = make_user(is_admin=True), make_user()
    before = counts_for(admin)
    with pytest.raises(LastAdmin):
        delete_user(user_id=admin)
    assert counts_for(admin) == before  # nothing deleted
    delete_user(user_id=member)  # a member may always leave
    delete_user(user_id=admin)  # the only account left: nothing to keep an admin for
    assert not rows_holding(admin)

    first, second = make_user(is_admin=True), make_user(is_admin=True)
    other = make_user()
    delete_user(user_id=first)  # another admin remains
    with pytest.raises(LastAdmin):
        delete_user(user_id=second)
    assert rows_holding(second) and rows_holding(other)
