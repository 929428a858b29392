"""Row-level security on PostgreSQL: the database itself keeps users apart (C1, C2)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core import db as core_db
from core.admin import NotAllowed, grant_admin, set_quota_override
from core.db import system_session, user_session
from models import AgentRun, Conversation, User, UserProfile, VibeConfig
from models.schemas import QuotaOverrideIn
from tests.conftest import PG_ADMIN_DSN
from tests.factories import fill_user, make_user

OWNED = {"users": "id", "user_profiles": "user_id", "vibe_configs": "user_id",
         "conversations": "user_id", "agent_runs": "user_id", "usage_counters": "user_id",
         "signin_addresses": "user_id", "user_sessions": "user_id", "password_resets": "user_id"}
# a column of each table that a write aimed at another user's rows sets to itself
UPDATE_PROBE = {"users": "is_admin", "user_profiles": "role", "vibe_configs": "name", "conversations": "title",
                "agent_runs": "output", "usage_counters": "tokens", "signin_addresses": "last_seen",
                "user_sessions": "expires_at", "password_resets": "expires_at"}


@pytest.fixture
def two_users(pg_url):
    a, b = make_user(), make_user()
    fill_user(a, marker="alpha")
    fill_user(b, marker="bravo")
    return a, b


def _rows(result: Any) -> int:
    """Rows touched by an UPDATE/DELETE (a CursorResult's rowcount)."""
    return int(result.rowcount)


def _app_may(session, table: str, privilege: str, column: str | None = None) -> bool:
    """Whether ``advisor_app`` holds ``privilege`` on ``table`` (or on its ``column``)."""
    if column is None:
        sql, params = "SELECT has_table_privilege('advisor_app', :t, :p)", {"t": table, "p": privilege}
    else:
        sql, params = ("SELECT has_column_privilege('advisor_app', :t, :c, :p)",
                       {"t": table, "c": column, "p": privilege})
    return bool(session.execute(text(sql), params).scalar_one())


def _assert_refused(session, sql: str, params: dict[str, Any] | None = None) -> None:
    """``sql`` fails in a savepoint (the transaction goes on): refused by a privilege, a row-level
    security policy or the run guard (insufficient privilege), or by the guard as a negative usage
    figure (check violation)."""
    with pytest.raises(DBAPIError) as info, session.begin_nested():
        session.execute(text(sql), params or {})
    refusals = (psycopg.errors.InsufficientPrivilege, psycopg.errors.CheckViolation)
    assert isinstance(info.value.orig, refusals), f"{sql}: {info.value.orig!r}"


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
        assert _rows(s.execute(text("DELETE FROM agent_runs"))) == 3
    with user_session(b) as s:
        assert s.execute(text("SELECT count(*) FROM agent_runs")).scalar_one() == 3
        assert s.execute(text("SELECT title FROM conversations")).scalar_one() == "conv bravo"
        assert s.execute(text("SELECT role FROM user_profiles")).scalar_one() == "CTO"
        assert s.execute(text("SELECT is_admin FROM users")).scalar_one() is False


def test_targeted_update_delete_of_other_users_rows_affect_nothing(two_users):
    """Where the user session holds the privilege, a write aimed at B's rows touches 0 of them; where
    it does not (B's usage counters, sign-in records, every column of ``users``), it is refused."""
    a, b = two_users
    with user_session(a) as s:
        for table, col in OWNED.items():
            probe = UPDATE_PROBE[table]
            for sql, allowed in (
                (f"DELETE FROM {table} WHERE {col} = :b", _app_may(s, table, "DELETE")),
                (f"UPDATE {table} SET {probe} = {probe} WHERE {col} = :b", _app_may(s, table, "UPDATE", probe)),
            ):
                if allowed:
                    assert _rows(s.execute(text(sql), {"b": b})) == 0, sql
                else:
                    _assert_refused(s, sql, {"b": b})
    with system_session() as s:
        assert s.execute(text("SELECT count(*) FROM agent_runs WHERE user_id = :b"), {"b": b}).scalar_one() == 3
        assert s.execute(text("SELECT count(*) FROM usage_counters WHERE user_id = :b"), {"b": b}).scalar_one() == 1


@pytest.mark.parametrize("kind", ["profile", "vibe", "conversation", "run", "user"])
def test_insert_with_other_users_id_is_refused(two_users, kind):
    a, b = two_users
    # accounts are created by the system role only: a user session may not insert into users at all
    refusal = "permission denied for table users" if kind == "user" else "row-level security"
    with pytest.raises(DBAPIError, match=refusal), user_session(a) as s:
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
    """No owner column is writable by a user session (column privileges, migration 0010); the
    owner-only WITH CHECK policies stand behind that."""
    a, b = two_users
    for table, col in OWNED.items():
        with user_session(a) as s:
            _assert_refused(s, f"UPDATE {table} SET {col} = :b", {"b": b})
    with user_session(b) as s:
        assert s.execute(text("SELECT title FROM conversations")).scalar_one() == "conv bravo"


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


def test_pooled_connection_does_not_leak_identity(pg_url):
    """Many interleaved sessions over a pool of one connection: each sees only its own rows."""
    users = [make_user() for _ in range(3)]
    for u in users:
        fill_user(u, runs=1)
    engine = core_db.engine_for(pg_url, pool_size=1)
    pids = set()
    for i in range(60):
        u = users[i % 3]
        with user_session(u, engine=engine) as s:
            pids.add(s.execute(text("SELECT pg_backend_pid()")).scalar_one())
            assert _owner_ids(s, "agent_runs") == {u}
            assert s.execute(text("SELECT current_user")).scalar_one() == "advisor_app"
        with engine.connect() as conn:  # between sessions: no role, no user id left behind
            assert conn.execute(text("SELECT current_user")).scalar_one() != "advisor_app"
            assert conn.execute(text("SELECT current_setting('app.user_id', true)")).scalar() in (None, "")
    assert len(pids) == 1


def test_identity_does_not_survive_an_error(pg_url):
    a = make_user()
    fill_user(a, runs=1)
    engine = core_db.engine_for(pg_url, pool_size=1)
    with pytest.raises(RuntimeError), user_session(a, engine=engine):
        raise RuntimeError("boom")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT current_setting('app.user_id', true)")).scalar() in (None, "")


def test_user_session_requires_uuid(pg_url):
    with pytest.raises(TypeError), user_session("not-a-uuid"):  # type: ignore[arg-type]
        pass


def _terminate(pid: int) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def _pid(u: uuid.UUID, engine: Any) -> int:
    with user_session(u, engine=engine) as s:
        return int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_dead_pooled_connection_is_replaced_on_checkout(pg_url):
    """A pooled connection whose backend died is found on checkout (SQLAlchemy's pool_pre_ping) and
    replaced: the user's next transaction runs, on a new backend."""
    u = make_user()
    engine = core_db.engine_for(pg_url, pool_size=1)
    pid = _pid(u, engine)
    assert _pid(u, engine) == pid
    _terminate(pid)
    assert _pid(u, engine) != pid


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


# ------------------------------------------------------------------------------------------------
# privileges and accounting (migration 0010): a user session writes only what the product lets a
# user change; admin actions and usage accounting go through the system role
# ------------------------------------------------------------------------------------------------
_RUN_FINISH = {"status", "output", "provider", "model", "fallback_from", "input_tokens", "output_tokens",
               "cached_input_tokens", "cache_write_tokens", "cost_usd", "ttft_ms", "latency_ms",
               "prompt_sha256", "atom_versions", "error_code"}
# 0011: the version link, the user's feedback and the live turn's heartbeat
_RUN_USER = {"superseded_by", "feedback", "feedback_comment", "feedback_at", "heartbeat_at"}
_SLIDERS = {"playfulness", "revenue_focus", "technical_depth", "brevity", "formality"}
# table -> (may INSERT rows, columns it may UPDATE, may DELETE rows); every table here is readable
# (under row-level security) except deletion_records
APP_WRITES: dict[str, tuple[bool, set[str], bool]] = {
    "users": (False, set(), True),
    "user_profiles": (True, {"role", "stack", "vertical", "updated_at"}, True),
    "vibe_configs": (True, {"name", "is_active", "updated_at", *_SLIDERS}, True),
    "conversations": (True, {"title"}, True),
    "agent_runs": (True, _RUN_FINISH | _RUN_USER, True),
    "usage_counters": (False, set(), False),
    "signin_addresses": (False, set(), False),
    "user_sessions": (False, set(), True),  # 0014: a user may see and end their sessions, never mint one
    "password_resets": (False, set(), False),  # 0017: a user may see their reset codes, nothing more
    "deletion_records": (False, set(), False),
}


def test_the_app_roles_write_privileges_are_the_product_matrix(pg_url):
    """Every column of every user table: what ``advisor_app`` may insert, update, delete, read."""
    with core_db.engine_for(pg_url).connect() as conn:
        for table, (inserts, updates, deletes) in APP_WRITES.items():
            columns = conn.execute(text(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = :t"), {"t": table}).scalars().all()
            privileges = {
                privilege: {c for c in columns if conn.execute(text(
                    "SELECT has_column_privilege('advisor_app', :t, :c, :p)"),
                    {"t": table, "c": c, "p": privilege}).scalar_one()}
                for privilege in ("SELECT", "INSERT", "UPDATE")
            }
            assert privileges["INSERT"] == (set(columns) if inserts else set()), table
            assert privileges["UPDATE"] == updates, table
            assert privileges["SELECT"] == (set() if table == "deletion_records" else set(columns)), table
            assert conn.execute(text("SELECT has_table_privilege('advisor_app', :t, 'DELETE')"),
                                {"t": table}).scalar_one() is deletes, table


def test_feedback_reaches_only_the_users_own_answers(two_users):
    """Feedback (0011's columns): a user session rates its own answers; aimed at another user's runs
    it touches none; a rating other than +1/-1 is refused."""
    a, b = two_users
    forged = "UPDATE agent_runs SET feedback = 1, feedback_comment = 'forged', feedback_at = now() "
    with user_session(a) as s:
        assert _rows(s.execute(text(forged + "WHERE user_id = :b"), {"b": b})) == 0
        assert _rows(s.execute(text(forged))) == 3  # unfiltered: A's own three runs only
        with pytest.raises(DBAPIError) as info, s.begin_nested():
            s.execute(text("UPDATE agent_runs SET feedback = 5"))
        assert isinstance(info.value.orig, psycopg.errors.CheckViolation)
    with user_session(b) as s:  # and B, aiming at A's runs, rates none of them
        assert _rows(s.execute(text(forged.replace("= 1", "= -1", 1) + "WHERE user_id = :a"), {"a": a})) == 0
    with system_session() as s:
        rated = dict(s.execute(text("SELECT user_id, count(feedback) FROM agent_runs GROUP BY user_id")).all())
        ratings = s.execute(text("SELECT DISTINCT feedback FROM agent_runs WHERE user_id = :a"), {"a": a}).all()
    assert rated == {a: 3, b: 0}
    assert ratings == [(1,)]


def _account(user_id: uuid.UUID) -> tuple[Any, ...]:
    with system_session() as s:
        return tuple(s.execute(text(
            "SELECT is_admin, quota_tokens_per_day, quota_cost_per_month_usd, password_hash, email, "
            "auth_provider, oidc_subject, password_reset_required FROM users WHERE id = :u"), {"u": user_id}).one())


def _sessions(user_id: uuid.UUID) -> tuple[Any, ...]:
    """The user's sign-in sessions and password reset codes, as the system sees them."""
    with system_session() as s:
        sessions = s.execute(text("SELECT id, token_hash, expires_at FROM user_sessions WHERE user_id = :u "
                                  "ORDER BY id"), {"u": user_id}).all()
        codes = s.execute(text("SELECT id, code_hash, expires_at FROM password_resets WHERE user_id = :u "
                               "ORDER BY id"), {"u": user_id}).all()
    return tuple(sessions), tuple(codes)


def _usage(user_id: uuid.UUID) -> tuple[Any, ...]:
    """The user's usage counters and the usage columns of each of their runs, as the system sees them."""
    with system_session() as s:
        counters = s.execute(text("SELECT day, tokens, cost_usd FROM usage_counters WHERE user_id = :u "
                                  "ORDER BY day"), {"u": user_id}).all()
        runs = s.execute(text(
            "SELECT id, status, created_at, input_tokens, output_tokens, cached_input_tokens, "
            "cache_write_tokens, cost_usd FROM agent_runs WHERE user_id = :u ORDER BY id"), {"u": user_id}).all()
    return tuple(counters), tuple(runs)


ACCOUNT_WRITES = {
    "make-A-admin": "UPDATE users SET is_admin = true WHERE id = :a",
    "raise-A-token-quota": "UPDATE users SET quota_tokens_per_day = 1000000000 WHERE id = :a",
    "raise-A-cost-quota": "UPDATE users SET quota_cost_per_month_usd = 1000000 WHERE id = :a",
    "clear-A-quota-overrides": "UPDATE users SET quota_tokens_per_day = NULL, quota_cost_per_month_usd = NULL "
                               "WHERE id = :a",
    "change-A-password-hash": "UPDATE users SET password_hash = '$argon2id$forged' WHERE id = :a",
    "change-A-email": "UPDATE users SET email = 'taken-over@example.com' WHERE id = :a",
    "change-A-sign-in-method": "UPDATE users SET auth_provider = 'oidc', oidc_subject = 'attacker' WHERE id = :a",
    "create-an-admin-account": "INSERT INTO users (id, email, auth_provider, is_admin, created_at) "
                               "VALUES (gen_random_uuid(), 'second-me@example.com', 'local', true, now())",
    "record-a-known-sign-in-address": "INSERT INTO signin_addresses (user_id, address_hash, last_seen) "
                                      "VALUES (:a, 'attacker-address', now())",
    "refresh-A-sign-in-addresses": "UPDATE signin_addresses SET last_seen = now() WHERE user_id = :a",
    "mint-a-session-for-A": "INSERT INTO user_sessions (id, user_id, token_hash, created_at, last_seen_at, "
                            "expires_at, user_agent) VALUES (gen_random_uuid(), :a, 'known-token-hash', now(), "
                            "now(), now() + interval '10 years', 'attacker')",
    "extend-A-sessions": "UPDATE user_sessions SET expires_at = now() + interval '10 years' WHERE user_id = :a",
    "swap-A-session-token": "UPDATE user_sessions SET token_hash = 'known-token-hash' WHERE user_id = :a",
    "mint-a-reset-code-for-A": "INSERT INTO password_resets (id, user_id, code_hash, created_at, expires_at) "
                               "VALUES (gen_random_uuid(), :a, 'known-code-hash', now(), now() + interval '10 years')",
    "extend-A-reset-code": "UPDATE password_resets SET expires_at = now() + interval '10 years' WHERE user_id = :a",
    "swap-A-reset-code": "UPDATE password_resets SET code_hash = 'known-code-hash' WHERE user_id = :a",
    "drop-A-reset-codes": "DELETE FROM password_resets WHERE user_id = :a",
    "clear-A-pending-reset": "UPDATE users SET password_reset_required = false WHERE id = :a",
    "start-a-reset-of-A": "UPDATE users SET password_reset_required = true WHERE id = :a",
    "insert-a-deletion-record": "INSERT INTO deletion_records (id, subject_hash, deleted_at, row_counts) "
                                "VALUES (gen_random_uuid(), 'forged', now(), '{}')",
}


@pytest.mark.parametrize("sql", ACCOUNT_WRITES.values(), ids=ACCOUNT_WRITES.keys())
def test_user_session_cannot_change_its_privileges_quotas_or_sign_in(two_users, sql):
    """As advisor_app with A's id: each write to A's privileges, quota overrides, authentication
    fields, sign-in records, sessions (mint one, extend one, swap its token) or password reset codes
    (mint, extend, swap, drop; clear or start a pending reset), or to the deletion records, is
    refused and changes nothing."""
    a, _b = two_users
    before = _account(a), _sessions(a)
    with user_session(a) as s:
        _assert_refused(s, sql, {"a": a})
        assert s.execute(text("SELECT count(*) FROM signin_addresses")).scalar_one() == 1
    assert (_account(a), _sessions(a)) == before
    assert before[0][0] is False  # still no admin


@pytest.fixture
def metered_user(pg_url):
    """A user with a finished run whose every usage figure is recorded (written as the system role,
    as the product's finish of a live run would record it) and one counter row."""
    a = make_user()
    ids = fill_user(a, runs=0)
    with system_session() as s:
        s.add(AgentRun(user_id=a, conversation_id=ids["conversation"], user_message="q", output="answer",
                       status="ok", provider="openai", model="gpt-test", input_tokens=100, output_tokens=50,
                       cached_input_tokens=20, cache_write_tokens=10, cost_usd=Decimal("0.5"), request_id="r"))
    return a, ids["conversation"]


USAGE_WRITES = {
    "delete-A-usage-counters": "DELETE FROM usage_counters WHERE user_id = :a",
    "lower-A-usage-counters": "UPDATE usage_counters SET tokens = 0, cost_usd = 0 WHERE user_id = :a",
    "add-a-negative-counter": "INSERT INTO usage_counters (user_id, day, tokens, cost_usd) "
                              "VALUES (:a, current_date + 1, -1000000, -100)",
    "lower-input-tokens": "UPDATE agent_runs SET input_tokens = 1 WHERE user_id = :a",
    "lower-output-tokens": "UPDATE agent_runs SET output_tokens = 0 WHERE user_id = :a",
    "lower-cached-tokens": "UPDATE agent_runs SET cached_input_tokens = 0 WHERE user_id = :a",
    "lower-cache-write-tokens": "UPDATE agent_runs SET cache_write_tokens = 0 WHERE user_id = :a",
    "lower-cost": "UPDATE agent_runs SET cost_usd = 0.01 WHERE user_id = :a",
    "erase-usage": "UPDATE agent_runs SET input_tokens = NULL, output_tokens = NULL, cached_input_tokens = NULL, "
                   "cache_write_tokens = NULL, cost_usd = NULL WHERE user_id = :a",
    "negative-usage": "UPDATE agent_runs SET output_tokens = -1000000 WHERE user_id = :a",
    "reopen-a-finished-run": "UPDATE agent_runs SET status = 'pending' WHERE user_id = :a",
    "move-a-run-to-another-day": "UPDATE agent_runs SET created_at = created_at - interval '40 days' "
                                 "WHERE user_id = :a",
    "rewrite-the-users-message": "UPDATE agent_runs SET user_message = 'never said' WHERE user_id = :a",
    "insert-a-finished-run": "INSERT INTO agent_runs (id, user_id, conversation_id, agent, created_at, "
                             "user_message, output, status, request_id) VALUES (gen_random_uuid(), :a, :c, "
                             "'general', now(), 'q', 'a', 'ok', 'r')",
    "insert-a-run-with-negative-usage": "INSERT INTO agent_runs (id, user_id, conversation_id, agent, created_at, "
                                        "user_message, output, status, request_id, input_tokens) VALUES "
                                        "(gen_random_uuid(), :a, :c, 'general', now(), 'q', '', 'pending', 'r', "
                                        "-1000000)",
}


@pytest.mark.parametrize("sql", USAGE_WRITES.values(), ids=USAGE_WRITES.keys())
def test_user_session_cannot_lower_or_erase_its_recorded_usage(metered_user, sql):
    """As advisor_app with A's id: deleting or lowering A's usage counters, and lowering, erasing or
    moving the usage of A's finished runs, are refused and change nothing."""
    a, conversation = metered_user
    before = _usage(a)
    assert before[0][0][1:] == (180, Decimal("0.5"))
    with user_session(a) as s:
        _assert_refused(s, sql, {"a": a, "c": conversation})
    assert _usage(a) == before


def _finish(run_id: uuid.UUID, **usage: Any) -> dict[str, Any]:
    return {"run_id": run_id, "status": "ok", "output": "answer", "input_tokens": None, "output_tokens": None,
            "cached_input_tokens": None, "cache_write_tokens": None, "cost_usd": None, **usage}


_FINISH_SQL = text(
    "UPDATE agent_runs SET status = :status, output = :output, input_tokens = :input_tokens, "
    "output_tokens = :output_tokens, cached_input_tokens = :cached_input_tokens, "
    "cache_write_tokens = :cache_write_tokens, cost_usd = :cost_usd WHERE id = :run_id"
)
_START_SQL = text(
    "INSERT INTO agent_runs (id, user_id, conversation_id, agent, created_at, user_message, output, status, "
    "request_id) VALUES (:id, :uid, :cid, 'general', :at, 'q', '', 'pending', 'r')"
)


def _as_user(user_id: uuid.UUID, *statements: tuple[Any, dict[str, Any]]) -> None:
    """Run ``statements`` in one ``user_session`` transaction (what the chat turn writes through)."""
    with user_session(user_id) as s:
        for statement, params in statements:
            s.execute(statement, params)


def test_a_user_session_still_runs_and_counts_its_turns(metered_user):
    """What the chat turn writes as the user still works, and is counted by the database: a pending
    run, its checkpoints, its finish (sent twice: a retried finish may repeat one that committed),
    the late finish of a run the recovery sweep closed; deleting the conversation keeps the usage."""
    from core.run_leases import sweep_stale_runs

    a, conversation = metered_user
    live, swept = uuid.uuid4(), uuid.uuid4()
    old = datetime.now(UTC) - timedelta(days=1)
    _as_user(a, (_START_SQL, {"id": live, "uid": a, "cid": conversation, "at": datetime.now(UTC)}),
             (_START_SQL, {"id": swept, "uid": a, "cid": conversation, "at": old}),
             (text("UPDATE agent_runs SET output = 'partial' WHERE id = :id"), {"id": live}))
    with pytest.raises(DBAPIError) as info:  # a live run's figures are never negative either
        _as_user(a, (_FINISH_SQL, _finish(live, input_tokens=-5)))
    assert isinstance(info.value.orig, psycopg.errors.CheckViolation)
    finish = _finish(live, input_tokens=40, output_tokens=3, cached_input_tokens=5, cache_write_tokens=2,
                     cost_usd=Decimal("0.25"))
    for _ in range(2):
        _as_user(a, (_FINISH_SQL, finish))
    counters, _runs = _usage(a)
    assert [row[1:] for row in counters] == [(230, Decimal("0.75"))]
    # the sweep marks the day-old pending run interrupted; the turn's own finish still records its usage
    assert len(sweep_stale_runs()) == 1  # no heartbeat, created a day ago: stale
    _as_user(a, (_FINISH_SQL, _finish(swept, input_tokens=7, output_tokens=1, cost_usd=Decimal("0.01"))))
    counters, _runs = _usage(a)
    assert {row[0]: row[1:] for row in counters} == {
        old.date(): (8, Decimal("0.01")), datetime.now(UTC).date(): (230, Decimal("0.75"))}
    with user_session(a) as s:
        assert _rows(s.execute(text("DELETE FROM conversations WHERE id = :c"), {"c": conversation})) == 1
        assert s.execute(text("SELECT count(*) FROM agent_runs")).scalar_one() == 0
    assert _usage(a) == (counters, ())


def test_admin_functions_still_change_privileges_and_quotas(two_users):
    """The product's admin actions (system role, behind an admin check) do what the user session
    may not; a non-admin calling them is refused."""
    a, b = two_users
    admin = make_user(is_admin=True)
    a_email = _account(a)[4]
    with pytest.raises(NotAllowed):
        grant_admin(acting_user_id=b, target_email=a_email)
    with pytest.raises(NotAllowed):
        set_quota_override(acting_user_id=a, data=QuotaOverrideIn(user_id=a, tokens_per_day=10**9))
    assert _account(a)[:3] == (False, None, None)
    assert grant_admin(acting_user_id=admin, target_email=a_email).is_admin
    set_quota_override(acting_user_id=admin,
                       data=QuotaOverrideIn(user_id=b, tokens_per_day=123, cost_per_month_usd=Decimal("4.5")))
    assert _account(a)[0] is True
    assert _account(b)[:3] == (False, 123, Decimal("4.5"))
