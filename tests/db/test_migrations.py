"""Migrations: up/down/up on SQLite and PostgreSQL, schema == models, concurrent start."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, inspect, table, text

import models
from core import db as core_db
from core.settings import ROOT
from models.search import include_in_schema_comparison, is_search_object


def _head() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(core_db.alembic_config("sqlite://")).get_current_head())


TABLES = {"users", "user_profiles", "vibe_configs", "conversations", "agent_runs", "deletion_records",
          "usage_counters", "signin_addresses", "user_sessions", "password_resets"}


def _tables(url: str) -> set[str]:
    with core_db.engine_for(url).connect() as conn:
        names = set(inspect(conn).get_table_names()) - {"alembic_version"}
    return {name for name in names if not is_search_object(name, "table")}  # SQLite's FTS5 tables


def _diff(url: str) -> list[object]:
    with core_db.engine_for(url).connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": include_in_schema_comparison}
        )
        return list(compare_metadata(ctx, models.metadata))


def _up_down_up(url: str) -> None:
    cfg = core_db.alembic_config(url)
    command.upgrade(cfg, "head")
    assert _tables(url) == TABLES
    command.downgrade(cfg, "base")
    assert _tables(url) == set()
    command.upgrade(cfg, "head")
    assert _tables(url) == TABLES
    assert core_db.current_revision(url) == _head()


def test_sqlite_upgrade_downgrade_upgrade_and_models_match(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    _up_down_up(url)
    assert _diff(url) == []


def test_postgres_upgrade_downgrade_upgrade_and_models_match(empty_pg_url):
    _up_down_up(empty_pg_url)
    assert _diff(empty_pg_url) == []


def test_migrate_is_idempotent(empty_pg_url):
    assert core_db.migrate(empty_pg_url) == _head()
    assert core_db.migrate(empty_pg_url) == _head()


def _two_processes_migrate(url: str) -> None:
    code = "import sys; from core.db import migrate; print(migrate(sys.argv[1]))"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], cwd=ROOT, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == _head()
    assert _tables(url) == TABLES


def test_two_processes_migrating_at_once_postgres(empty_pg_url):
    _two_processes_migrate(empty_pg_url)


def test_two_processes_migrating_at_once_sqlite(tmp_path):
    _two_processes_migrate(f"sqlite:///{tmp_path / 'race.db'}")


def _backfill(url: str) -> None:
    """0005 sums the runs that exist before it into usage_counters (per user and UTC day)."""
    cfg = core_db.alembic_config(url)
    command.upgrade(cfg, "0004")
    engine = core_db.engine_for(url)
    uid, cid = uuid.uuid4(), uuid.uuid4()
    runs = models.AgentRun.__table__  # type: ignore[attr-defined]
    with engine.begin() as conn:
        # the users columns of that older revision only (a later column's model default is no column yet)
        users = models.User.__table__  # type: ignore[attr-defined]
        old_users = table("users", *(column(c, users.c[c].type)
                                     for c in ("id", "email", "auth_provider", "is_admin", "created_at")))
        conn.execute(old_users.insert(), {
            "id": uid, "email": f"{uid.hex}@example.com", "auth_provider": "local", "is_admin": False,
            "created_at": datetime(2026, 1, 1, tzinfo=UTC)})
        conn.execute(models.Conversation.__table__.insert(), {  # type: ignore[attr-defined]
            "id": cid, "user_id": uid, "title": "t", "agent": "general",
            "created_at": datetime(2026, 1, 1, tzinfo=UTC)})
        for at, tokens, cost in ((datetime(2026, 1, 2, 1, tzinfo=UTC), 10, "0.1"),
                                 (datetime(2026, 1, 2, 23, tzinfo=UTC), 5, None),
                                 (datetime(2026, 1, 3, 0, 30, tzinfo=UTC), 7, "0.2")):
            conn.execute(runs.insert(), {
                "id": uuid.uuid4(), "user_id": uid, "conversation_id": cid, "agent": "general", "created_at": at,
                "user_message": "q", "output": "a", "status": "ok", "input_tokens": tokens, "output_tokens": 1,
                "cost_usd": Decimal(cost) if cost else None, "request_id": "r"})
    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT day, tokens, cost_usd FROM usage_counters ORDER BY day")).all()
    assert [(str(d), int(t), Decimal(str(c))) for d, t, c in rows] == [
        ("2026-01-02", 17, Decimal("0.1")), ("2026-01-03", 8, Decimal("0.2"))]


def test_usage_counters_are_backfilled_sqlite(tmp_path):
    _backfill(f"sqlite:///{tmp_path / 'b.db'}")


def test_usage_counters_are_backfilled_postgres(empty_pg_url):
    _backfill(empty_pg_url)


# ------------------------------------------------------------------------------------------------
# 0010: column privileges for advisor_app
# ------------------------------------------------------------------------------------------------
def _app_privileges(url: str) -> tuple[bool, bool, bool, bool]:
    """(advisor_app may set users.is_admin, may delete usage_counters, the run guard trigger exists,
    the usage-counting function is SECURITY DEFINER)."""
    with core_db.engine_for(url).connect() as conn:
        return tuple(conn.execute(text(
            "SELECT has_column_privilege('advisor_app', 'users', 'is_admin', 'UPDATE'), "
            "has_table_privilege('advisor_app', 'usage_counters', 'DELETE'), "
            "EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'agent_runs_guard_write'), "
            "(SELECT prosecdef FROM pg_proc WHERE oid = 'app.count_run_usage()'::regprocedure)")).one())


def test_column_privileges_downgrade_restores_and_upgrade_applies_again(empty_pg_url):
    from alembic.script import ScriptDirectory

    cfg = core_db.alembic_config(empty_pg_url)
    before = ScriptDirectory.from_config(cfg).get_revision("0010").down_revision
    command.upgrade(cfg, "head")
    assert _app_privileges(empty_pg_url) == (False, False, True, True)
    command.downgrade(cfg, str(before))
    assert _app_privileges(empty_pg_url) == (True, True, False, False)
    command.upgrade(cfg, "head")
    assert _app_privileges(empty_pg_url) == (False, False, True, True)


def test_usage_is_counted_when_a_non_superuser_owns_the_schema(pg_template):
    """Production runs migrations as the database owner, neither superuser nor BYPASSRLS nor a member
    of the app's roles, and the app logs in as another role that may switch to them (README). The
    usage-counting function (SECURITY DEFINER, run as that owner) must still write the counters under
    FORCE ROW LEVEL SECURITY when a user session finishes a run."""
    from sqlalchemy.engine import make_url

    from tests.conftest import _admin_exec, _pg_url, drop_pg_database

    suffix = uuid.uuid4().hex[:8]
    owner, login, name = f"advisor_owner_{suffix}", f"advisor_login_{suffix}", f"advisor_t_{uuid.uuid4().hex[:12]}"
    for role in (owner, login):
        _admin_exec(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE')
    try:
        _admin_exec(f'GRANT advisor_app, advisor_system TO "{login}"')
        _admin_exec(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        assert core_db.migrate(make_url(_pg_url(name)).set(username=owner).render_as_string()) == _head()
        engine = core_db.engine_for(make_url(_pg_url(name)).set(username=login).render_as_string())
        uid, cid, run = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        with core_db.system_session(engine=engine) as s:
            s.add(models.User(id=uid, email=f"{uid.hex}@example.com"))
            s.flush()
            s.add(models.Conversation(id=cid, user_id=uid))
        with core_db.user_session(uid, engine=engine) as s:
            s.execute(text(
                "INSERT INTO agent_runs (id, user_id, conversation_id, agent, created_at, user_message, output, "
                "status, request_id) VALUES (:r, :u, :c, 'general', now(), 'q', '', 'pending', 'x')"),
                {"r": run, "u": uid, "c": cid})
            s.execute(text("UPDATE agent_runs SET status = 'ok', input_tokens = 30, output_tokens = 12, "
                           "cost_usd = 0.5 WHERE id = :r"), {"r": run})
        with core_db.user_session(uid, engine=engine) as s:
            assert s.execute(text("SELECT tokens, cost_usd FROM usage_counters")).one() == (42, Decimal("0.5"))
    finally:
        drop_pg_database(name)
        for role in (login, owner):
            _admin_exec(f'DROP ROLE IF EXISTS "{role}"')
