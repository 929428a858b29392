"""Row-level security on PostgreSQL: the database itself keeps users apart (C1, C2)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core import db as core_db
from core.db import pg_user_transaction, system_session, user_connection, user_session
from models import AgentRun, Conversation, User, UserProfile, VibeConfig
from tests.factories import fill_user, make_user

OWNED = {"users": "id", "user_profiles": "user_id", "vibe_configs": "user_id",
         "conversations": "user_id", "agent_runs": "user_id", "usage_counters": "user_id"}


@pytest.fixture
def two_users(pg_url):
    a, b = make_user(), make_user()
    fill_user(a, marker="alpha")
    fill_user(b, marker="bravo")
    return a, b


def _rows(result: Any) -> int:
    """Rows touched by an UPDATE/DELETE (a CursorResult's rowcount)."""
    return int(result.rowcount)


def _owner_ids(session, table: str) -> set[uuid.UUID]:
    col = OWNED[table]
    return {row[0] for row in session.execute(text(f"SELECT {col} FROM {table}"))}


def test_unfiltered_select_sees_only_own_rows(two_users):
    a, _b = two_users
    with user_session(a) as s:
        for table in OWNED:
            assert _owner_ids(s, table) == {a}, table


def test_unfiltered_update_and_delete_touch_only_own_rows(two_users):
    a, b = two_users
    with user_session(a) as s:
        assert _rows(s.execute(text("UPDATE conversations SET title = 'mine'"))) == 1
        assert _rows(s.execute(text("UPDATE vibe_configs SET name = 'mine'"))) == 1
        assert _rows(s.execute(text("UPDATE user_profiles SET role = 'mine'"))) == 1
        assert _rows(s.execute(text("UPDATE users SET is_admin = true"))) == 1
        assert _rows(s.execute(text("DELETE FROM agent_runs"))) == 3
    with user_session(b) as s:
        assert s.execute(text("SELECT count(*) FROM agent_runs")).scalar_one() == 3
        assert s.execute(text("SELECT title FROM conversations")).scalar_one() == "conv bravo"
        assert s.execute(text("SELECT role FROM user_profiles")).scalar_one() == "CTO"
        assert s.execute(text("SELECT is_admin FROM users")).scalar_one() is False


def test_targeted_update_delete_of_other_users_rows_affect_nothing(two_users):
    a, b = two_users
    with user_session(a) as s:
        for table, col in OWNED.items():
            assert _rows(s.execute(text(f"DELETE FROM {table} WHERE {col} = :b"), {"b": b})) == 0
            assert _rows(s.execute(text(f"UPDATE {table} SET {col} = {col} WHERE {col} = :b"), {"b": b})) == 0
    with system_session() as s:
        assert s.execute(text("SELECT count(*) FROM agent_runs WHERE user_id = :b"), {"b": b}).scalar_one() == 3


@pytest.mark.parametrize("kind", ["profile", "vibe", "conversation", "run", "user"])
def test_insert_with_other_users_id_is_refused(two_users, kind):
    a, b = two_users
    with pytest.raises(DBAPIError, match="row-level security"), user_session(a) as s:
        if kind == "profile":
            s.execute(text("DELETE FROM user_profiles"))
            s.add(UserProfile(user_id=b, role="x"))
        elif kind == "vibe":
            s.add(VibeConfig(user_id=b, name="stolen"))
        elif kind == "conversation":
            s.add(Conversation(user_id=b, title="stolen"))
        elif kind == "run":
            conv = s.execute(text("SELECT id FROM conversations")).scalar_one()
            s.add(AgentRun(user_id=b, conversation_id=conv, user_message="x"))
        else:
            s.add(User(id=uuid.uuid4(), email="intruder@example.com"))
        s.flush()


def test_moving_a_row_to_another_user_is_refused(two_users):
    a, b = two_users
    with pytest.raises(DBAPIError, match="row-level security"), user_session(a) as s:
        s.execute(text("UPDATE conversations SET user_id = :b"), {"b": b})


def test_app_role_without_user_id_sees_nothing(two_users, pg_url):
    with core_db.engine_for(pg_url).connect() as conn, conn.begin():
        conn.execute(text("SET LOCAL ROLE advisor_app"))
        for table in OWNED:
            assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, table


def test_rls_enabled_forced_with_policies_on_every_table_with_user_id(pg_url):
    """Catalogue-driven: a future table with a user_id column and no RLS fails this test (C2)."""
    with core_db.engine_for(pg_url).connect() as conn:
        owned = {r[0] for r in conn.execute(text(
            "SELECT c.table_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE c.table_schema = 'public' AND c.column_name = 'user_id' AND t.table_type = 'BASE TABLE'"
        ))} | {"users"}
        assert {"user_profiles", "vibe_configs", "conversations", "agent_runs"} <= owned
        for table in owned:
            enabled, forced = conn.execute(text(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class "
                "WHERE oid = to_regclass(:t)"), {"t": f"public.{table}"}).one()
            assert enabled and forced, f"{table}: RLS enabled={enabled} forced={forced}"
            cmds = {r[0] for r in conn.execute(text(
                "SELECT cmd FROM pg_policies WHERE schemaname = 'public' AND tablename = :t "
                "AND 'advisor_app' = ANY(roles)"), {"t": table})}
            assert {"SELECT", "INSERT", "UPDATE", "DELETE"} <= cmds, f"{table}: policies {cmds}"


@pytest.mark.parametrize("opener", [user_session, user_connection], ids=["orm", "core"])
def test_pooled_connection_does_not_leak_identity(pg_url, opener):
    """Many interleaved sessions over a pool of one connection: each sees only its own rows."""
    users = [make_user() for _ in range(3)]
    for u in users:
        fill_user(u, runs=1)
    engine = core_db.engine_for(pg_url, pool_size=1)
    pids = set()
    for i in range(60):
        u = users[i % 3]
        with opener(u, engine=engine) as s:
            pids.add(s.execute(text("SELECT pg_backend_pid()")).scalar_one())
            assert _owner_ids(s, "agent_runs") == {u}
            assert s.execute(text("SELECT current_user")).scalar_one() == "advisor_app"
        with engine.connect() as conn:  # between sessions: no role, no user id left behind
            assert conn.execute(text("SELECT current_user")).scalar_one() != "advisor_app"
            assert conn.execute(text("SELECT current_setting('app.user_id', true)")).scalar() in (None, "")
    assert len(pids) == 1


@pytest.mark.parametrize("opener", [user_session, user_connection], ids=["orm", "core"])
def test_identity_does_not_survive_an_error(pg_url, opener):
    a = make_user()
    fill_user(a, runs=1)
    engine = core_db.engine_for(pg_url, pool_size=1)
    with pytest.raises(RuntimeError), opener(a, engine=engine):
        raise RuntimeError("boom")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_setting('app.user_id', true)")).scalar() in (None, "")


@pytest.mark.parametrize("opener", [user_session, user_connection], ids=["orm", "core"])
def test_user_session_requires_uuid(pg_url, opener):
    with pytest.raises(TypeError), opener("not-a-uuid"):
        pass


def test_pg_user_transaction_sees_own_rows_and_leaves_no_identity(pg_url):
    """The chat turn's raw psycopg path: same identity switch, same RLS, nothing left behind."""
    users = [make_user() for _ in range(3)]
    for u in users:
        fill_user(u, runs=1)
    engine = core_db.engine_for(pg_url, pool_size=1)
    for i in range(30):
        u = users[i % 3]
        with pg_user_transaction(u, engine=engine) as pg:
            assert {r[0] for r in pg.execute("SELECT user_id FROM agent_runs").fetchall()} == {u}
            assert pg.execute("SELECT current_user").fetchone() == ("advisor_app",)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar_one() != "advisor_app"
            assert conn.execute(text("SELECT current_setting('app.user_id', true)")).scalar() in (None, "")
    with pytest.raises(RuntimeError), pg_user_transaction(users[0], engine=engine) as pg:
        pg.execute("UPDATE conversations SET title = 'rolled back'")
        raise RuntimeError("boom")
    with user_session(users[0], engine=engine) as s:
        assert s.execute(text("SELECT title FROM conversations")).scalar_one() != "rolled back"
    with pytest.raises(TypeError), pg_user_transaction("not-a-uuid"):  # type: ignore[arg-type]
        pass
