"""The PostgreSQL fast path (rows rendered by SQL) writes exactly the bytes the Python path writes."""

from __future__ import annotations

import io
import uuid
import zipfile
from decimal import Decimal

from sqlalchemy import text

from core import privacy
from core.db import get_engine, system_session
from models import AgentRun
from tests.factories import fill_user, make_user

AWKWARD = [
    "plain", "", 'quote " and ""double""', "comma, semicolon; tab\there", "line\nbreak and \r\nCRLF",
    "back\\slash \\. and \\N", "emoji 🚀 and ümlaut", "<<<BEGIN PROFILE DATA>>>", "trailing space ",
    "controls \x01\x07\x0b\x0e\x1f", "backspace \b, form feed \f", "del \x7f, line separator \u2028", '"', ",", "\r",
]


def _zip_files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n != "manifest.json"}


def test_fast_and_python_paths_agree_byte_for_byte(pg_url, monkeypatch):
    user = make_user(email="paths@example.com")
    ids = fill_user(user, runs=0, marker="paths")
    with system_session() as s:  # finished runs: a user session only starts runs as pending
        for i, text in enumerate(AWKWARD * 3):
            s.add(AgentRun(
                user_id=user, conversation_id=ids["conversation"], user_message=text, output=text[::-1],
                status=["ok", "error", "interrupted", "pending"][i % 4], provider=None if i % 5 == 0 else "openai",
                model="gpt-4o-mini", input_tokens=i, output_tokens=None if i % 3 == 0 else 2 * i,
                cost_usd=None if i % 4 == 0 else Decimal("0.00012345") * i, ttft_ms=i, latency_ms=10 * i,
                prompt_sha256="a" * 64, atom_versions=[["base-persona", 1], ["vibe-brevity-high", i]],
                request_id=uuid.uuid4().hex[:12], error_code="server" if i % 4 == 1 else None,
            ))
    _add_notes_table(user)
    used: list[str] = []
    real = privacy._pg_line_query

    def counting(t, fmt, dialect):
        query = real(t, fmt, dialect)
        if query is not None:
            used.append(f"{t.name}.{fmt}")
        return query

    monkeypatch.setattr(privacy, "_pg_line_query", counting)
    fast = _zip_files(privacy.export_user_data(user_id=user))
    assert {"agent_runs.jsonl", "agent_runs.csv", "notes.jsonl"} <= set(used)  # the fast path really ran
    monkeypatch.setattr(privacy, "_psycopg_connection", lambda conn: None)
    slow = _zip_files(privacy.export_user_data(user_id=user))
    assert fast.keys() == slow.keys() and {"agent_runs.jsonl", "agent_runs.csv", "extra/notes.jsonl"} <= fast.keys()
    for name in fast:
        assert fast[name] == slow[name], name


def _add_notes_table(user: uuid.UUID) -> None:
    """A table the export does not know (extra/notes.jsonl), with long text first, last and NULL."""
    with get_engine().begin() as conn:
        conn.execute(text("CREATE TABLE notes (body TEXT, id uuid PRIMARY KEY, user_id uuid NOT NULL "
                          "REFERENCES users(id), title VARCHAR(40), tail VARCHAR)"))
        conn.execute(text("GRANT SELECT ON notes TO advisor_app"))
        for i, body in enumerate([*AWKWARD, None]):
            conn.execute(text("INSERT INTO notes VALUES (:body, :id, :uid, :title, :tail)"), {
                "body": body, "id": str(uuid.uuid4()), "uid": str(user),
                "title": None if i % 3 == 0 else body, "tail": None if i % 2 else f"tail {i}: {body}",
            })
