"""Row-level security on PostgreSQL: the database itself keeps users apart (C1, C2)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core import db as core_db
from core.db import pg_user_batch, system_session, user_connection, user_session
from models import AgentRun, Conversation, User, UserProfile, VibeConfig
from tests.conftest import PG_ADMIN_DSN
from tests.factories import fill_user, make_user

OWNED = {"users": "id", "user_profiles": "user_id", "vibe_configs": "user_id",
         "conversations": "user_id", "agent_runs": "user_id", "usage_counters": "user_id",
         "signin_addresses": "user_id"}


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


def test_pg_user_batch_sees_own_rows_and_leaves_no_identity(pg_url):
    """The chat turn's raw psycopg path: same identity switch, same RLS, one transaction, nothing left."""
    users = [make_user() for _ in range(3)]
    for u in users:
        fill_user(u, runs=1)
    engine = core_db.engine_for(pg_url, pool_size=1)
    for i in range(30):
        u = users[i % 3]
        runs, me, xacts = pg_user_batch(u, [
            ("SELECT user_id FROM agent_runs", {}),
            ("SELECT current_user, current_setting('app.user_id')", {}),
            ("SELECT count(DISTINCT txid) FROM (VALUES (txid_current()), (txid_current())) t(txid)", {}),
        ], engine=engine)
        assert {r[0] for r in runs} == {u}
        assert me == [("advisor_app", str(u))]
        assert xacts == [(1,)]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar_one() != "advisor_app"
            assert conn.execute(text("SELECT current_setting('app.user_id', true)")).scalar() in (None, "")
    # one transaction: an error in a later statement rolls back an earlier one
    with pytest.raises(psycopg.errors.DivisionByZero):
        pg_user_batch(users[0], [("UPDATE conversations SET title = 'rolled back'", {}),
                                 ("SELECT 1 / 0", {})], engine=engine)
    with user_session(users[0], engine=engine) as s:
        assert s.execute(text("SELECT title FROM conversations")).scalar_one() != "rolled back"
    # and the connection is fine afterwards
    assert pg_user_batch(users[0], [("SELECT 1", {})], engine=engine) == [[(1,)]]
    # a statement that returns no rows gives an empty list; RLS still refuses other users' rows
    assert pg_user_batch(users[0], [("UPDATE conversations SET title = 'x' WHERE user_id = %(u)s",
                                     {"u": users[1]})], engine=engine) == [[]]
    with user_session(users[1], engine=engine) as s:
        assert s.execute(text("SELECT title FROM conversations")).scalar_one() != "x"
    with pytest.raises(TypeError):
        pg_user_batch("not-a-uuid", [], engine=engine)  # type: ignore[arg-type]


def _terminate(pid: int) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def _count_pings(engine: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    real = engine.dialect.do_ping

    def counting(dbapi_conn: Any) -> bool:
        pings.append(1)
        return bool(real(dbapi_conn))

    monkeypatch.setattr(engine.dialect, "do_ping", counting)
    return pings


def _pid(u: uuid.UUID, engine: Any) -> int:
    rows = pg_user_batch(u, [("SELECT pg_backend_pid()", {})], engine=engine)[0]
    return int(rows[0][0])


def test_pg_user_batch_replaces_a_dead_pooled_connection(pg_url, monkeypatch):
    """No pre-ping round trip on this path: the batch itself finds a dead connection, which is
    replaced, and the batch is sent once more (pinged); the SQLAlchemy paths still ping on checkout."""
    u = make_user()
    engine = core_db.engine_for(pg_url, pool_size=1)
    pings = _count_pings(engine, monkeypatch)
    pid = _pid(u, engine)
    assert _pid(u, engine) == pid and len(pings) == 0  # a live connection: no ping
    _terminate(pid)
    pid2 = _pid(u, engine)
    assert pid2 != pid and len(pings) == 0  # found dead by the batch, replaced (a new one needs no ping)
    with user_session(u, engine=engine) as s:
        s.execute(text("SELECT 1"))
    assert len(pings) == 1  # user_session pings on checkout
    _terminate(pid2)
    with user_session(u, engine=engine) as s:  # the ping finds it and the pool reconnects
        assert s.execute(text("SELECT pg_backend_pid()")).scalar_one() not in (pid, pid2)


def test_pg_user_batch_second_try_on_a_new_connection(pg_url, monkeypatch):
    """The second try takes the dead connection's replacement (a new one: not pinged) and runs there."""
    u = make_user()
    engine = core_db.engine_for(pg_url, pool_size=2)
    first, second = engine.connect(), engine.connect()
    pid_a = first.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    pid_b = second.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    second.close()
    first.close()  # last in, first out: the pool hands out A, then B
    pings = _count_pings(engine, monkeypatch)
    _terminate(pid_a)
    replacement = _pid(u, engine)
    assert replacement not in (pid_a, pid_b) and len(pings) == 0
    assert _pid(u, engine) == replacement and len(pings) == 0  # the one used last again, live: no ping


def test_the_pool_hands_out_the_connection_used_last(pg_url):
    """Sequential turns keep to one warm connection (its backend's caches and psycopg's prepared
    statements) instead of cycling through every connection the pool has opened."""
    u = make_user()
    engine = core_db.engine_for(pg_url, pool_size=4)
    held = [engine.connect() for _ in range(4)]
    pids = [c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for c in held]
    for c in held:
        c.close()
    assert [_pid(u, engine) for _ in range(6)] == [pids[-1]] * 6


def test_pg_user_batch_does_not_retry_a_statement_error(pg_url):
    """Only a dead connection is sent the batch again: a cancelled statement is raised as it is,
    the whole batch rolled back, and the connection kept."""
    u = make_user()
    fill_user(u, runs=1)
    engine = core_db.engine_for(pg_url, pool_size=1)
    pid = _pid(u, engine)
    with pytest.raises(psycopg.errors.QueryCanceled):
        pg_user_batch(u, [("UPDATE conversations SET title = title || '+'", {}),
                          ("SET LOCAL statement_timeout = 1", {}),
                          ("SELECT pg_sleep(0.2)", {})], engine=engine)
    assert _pid(u, engine) == pid  # not invalidated, not retried on another connection
    with user_session(u, engine=engine) as s:
        assert not s.execute(text("SELECT title FROM conversations")).scalar_one().endswith("+")
