"""Data and checks shared by the export and deletion tests (C17, C18).

Everything here reads the database directly (as the table owner, typed by the models), never through
``core.export`` or ``core.deletion``, so those modules are checked against an independent view.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect, select, text, update
from sqlalchemy.engine import Engine

import models
from core import db as core_db
from core.accounts import sign_up
from core.db import system_session
from models import AgentRun, Conversation, DeletionRecord, VibeConfig
from models.schemas import SignUpIn
from models.types import utcnow
from tests.factories import fill_user, make_user

PASSWORD = "correct horse battery staple 9"
TRICKY = 'comma, "quotes", newline\nsecond line\r\nCRLF; tab\t; unicode: Grüße 数据 🚀'


def seed_user(user_id: uuid.UUID, marker: str) -> None:
    """Rows in every table, with values that stress JSON and CSV, all tagged with ``marker``."""
    fill_user(user_id, runs=3, marker=marker)
    with system_session() as s:  # finished runs: a user session only starts runs as pending
        conv = Conversation(user_id=user_id, title=f"second {marker}", agent="board-update")
        s.add(conv)
        s.add(VibeConfig(user_id=user_id, name=f"calm {marker}", brevity=9, is_active=False))
        s.flush()
        start = utcnow() - timedelta(days=1)
        # an edited or regenerated turn: the replaced run stays, pointing at its replacement
        replacement = uuid.uuid4()
        s.add(AgentRun(id=replacement, user_id=user_id, conversation_id=conv.id, agent="board-update",
                       created_at=start + timedelta(minutes=9), user_message=f"{marker} message 0 edited",
                       output=f"{marker} answer 0 regenerated", status="ok", provider="openai", model="gpt-test",
                       input_tokens=5, output_tokens=5, request_id=f"req{marker}v2"[:32]))
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
                    # the user's feedback: an answer rated down, with a comment
                    feedback=-1 if i == 0 else None,
                    feedback_comment=f"{marker} feedback: {TRICKY}" if i == 0 else None,
                    feedback_at=start + timedelta(minutes=30) if i == 0 else None,
                    superseded_by=replacement if i == 0 else None,
                )
            )


def seed_two_users() -> tuple[uuid.UUID, uuid.UUID]:
    """Two users with rows in every table: ``a`` (signed up with ``PASSWORD``) and ``b`` (an admin)."""
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


def db_engine() -> Engine:
    return core_db.get_engine()


def owned_tables() -> dict[str, str]:
    """The test's own catalogue: table -> owner column (users.id, or a user_id column)."""
    with db_engine().connect() as conn:
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
    with db_engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t).where(owner == user_id))]


def counts_for(user_id: uuid.UUID) -> dict[str, int]:
    return {t: len(db_rows(t, user_id)) for t in owned_tables()}


def all_deletion_records() -> list[dict[str, Any]]:
    with db_engine().connect() as conn:
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


def rows_holding(user_id: uuid.UUID) -> dict[str, int]:
    """Scan every column of every table for the id (dashed text, or the 32-hex SQLite form)."""
    found: dict[str, int] = {}
    with db_engine().connect() as conn:
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


def add_notes_table(with_row_for: list[uuid.UUID]) -> None:
    """What a future migration might add: another table carrying user_id (grants + RLS on PG)."""
    engine = db_engine()
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
