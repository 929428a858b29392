"""Engines, identity-carrying sessions, and migrations at start.

``user_session(user_id)`` is how app code reads or writes a user's rows. On PostgreSQL it opens a
transaction, switches to the NOLOGIN role ``advisor_app`` and sets ``app.user_id``, both
transaction-local, so row-level security applies and a pooled connection never keeps an identity.
``user_connection(user_id)`` (a Core connection) does the same without the ORM, and
``pg_user_batch(user_id, statements)`` sends a few raw psycopg statements as that user in one round
trip and one transaction: the chat turn's two writes.
``system_session()`` is for what has no user yet (sign-in lookups, sign-up) and for maintenance.
"""

from __future__ import annotations

import fcntl
import logging
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, create_engine

from core.settings import ROOT, Settings, get_settings

if TYPE_CHECKING:  # imported where used: a SQLite-only process never loads the PostgreSQL driver
    import psycopg

log = logging.getLogger("advisor.db")

APP_ROLE = "advisor_app"
SYSTEM_ROLE = "advisor_system"
_SET_ROLE = text("SELECT set_config('role', :role, true)")
# One round trip: the transaction-local role switch and the user id (set_config(..., true) is SET LOCAL).
_PG_SET_IDENTITY = "SELECT set_config('role', %s, true), set_config('app.user_id', %s, true)"
# Off only while pg_user_batch checks a connection out: its own statements are its liveness check.
_PRE_PING: ContextVar[bool] = ContextVar("advisor_pre_ping", default=True)
# Arbitrary constant: the advisory lock that serialises `alembic upgrade` across app processes.
MIGRATION_LOCK_ID = 7_362_001


class NotFound(LookupError):
    """An id that does not exist for this user (or at all: the two are never told apart)."""


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    path = Path(u.database)
    return path if path.is_absolute() else Path.cwd() / path


_engines: dict[tuple[str, int], Engine] = {}
_engines_lock = threading.Lock()


def _make_engine(url: str, pool_size: int) -> Engine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        kwargs.update(pool_pre_ping=True, connect_args={"check_same_thread": False, "timeout": 30})
    else:
        # LIFO: the connection used last is handed out next, so a turn's writes find a backend whose
        # caches and prepared statements are warm (psycopg prepares a statement on its 5th use on a
        # connection), not the pool's least recently used one; connections left idle are recycled.
        kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=1800, pool_use_lifo=True)
    engine = create_engine(url, **kwargs)
    if not url.startswith("sqlite"):
        # Pre-ping as SQLAlchemy's pool_pre_ping does (not a connection just made; a dead one found on
        # checkout is replaced and the pool invalidated), but from a checkout listener, so that
        # pg_user_batch can skip it: its own round trip finds a dead connection just as well.
        @event.listens_for(engine, "connect")
        def _mark_fresh(_dbapi_conn: Any, record: Any) -> None:
            record.info["advisor_fresh"] = True

        @event.listens_for(engine, "checkout")
        def _pre_ping(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
            fresh = record.info.pop("advisor_fresh", False)
            if fresh or not _PRE_PING.get():
                return
            dialect = engine.dialect
            try:
                dialect.do_ping(dbapi_conn)
            except dialect.loaded_dbapi.Error as exc:
                if dialect.is_disconnect(exc, dbapi_conn, None):
                    raise sa_exc.InvalidatePoolError() from exc
                raise

    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


def engine_for(url: str, *, pool_size: int = 10) -> Engine:
    """The process-wide engine for ``url`` (created once, pooled, pre-pinged)."""
    key = (url, pool_size)
    engine = _engines.get(key)
    if engine is None:
        with _engines_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = _make_engine(url, pool_size)
    return engine


def get_engine(settings: Settings | None = None) -> Engine:
    """The cached engine for the configured database."""
    return engine_for((settings or get_settings()).database_url)


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests, shutdown)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def _set_identity(conn: Connection, role: str, user_id: uuid.UUID) -> None:
    """The transaction-local role and user id, straight on the driver's cursor: it is one fixed
    statement per transaction, and SQLAlchemy's statement machinery would cost more than the round
    trip. The connection's transaction is already begun (psycopg opens it with this statement)."""
    cursor = conn.connection.cursor()
    try:
        cursor.execute(_PG_SET_IDENTITY, (role, str(user_id)))
    finally:
        cursor.close()


@contextmanager
def user_session(user_id: uuid.UUID, *, engine: Engine | None = None) -> Iterator[Session]:
    """A transaction acting as ``user_id``: commits on success, rolls back on error.

    PostgreSQL: ``SET LOCAL ROLE advisor_app`` + ``app.user_id`` (row-level security on).
    SQLite has no RLS: there the app-level ``user_id`` filters are the only wall.
    """
    if not isinstance(user_id, uuid.UUID):
        raise TypeError("user_session needs a uuid.UUID")
    engine = engine or get_engine()
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if engine.dialect.name == "postgresql":
            _set_identity(session.connection(), APP_ROLE, user_id)
        yield session


@contextmanager
def user_connection(user_id: uuid.UUID, *, engine: Engine | None = None) -> Iterator[Connection]:
    """``user_session`` without the ORM: a Core connection in a transaction acting as ``user_id``.

    For the hot path of a chat turn (a handful of cached statements, no unit of work to flush):
    the same identity switch, the same commit-on-success / rollback-on-error.
    """
    if not isinstance(user_id, uuid.UUID):
        raise TypeError("user_connection needs a uuid.UUID")
    engine = engine or get_engine()
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            _set_identity(conn, APP_ROLE, user_id)
        yield conn


Statement = tuple[str, Mapping[str, Any]]


def is_database_error(exc: BaseException) -> bool:
    """An error of the database or the connection: SQLAlchemy's ``DBAPIError``, or a ``psycopg.Error``
    raised by ``pg_user_batch`` (checked without importing psycopg where it was never loaded)."""
    if isinstance(exc, sa_exc.DBAPIError):
        return True
    psycopg_module = sys.modules.get("psycopg")
    return psycopg_module is not None and isinstance(exc, psycopg_module.Error)


def pg_user_batch(
    user_id: uuid.UUID, statements: Sequence[Statement], *, engine: Engine | None = None
) -> list[list[tuple[Any, ...]]]:
    """PostgreSQL only: run raw psycopg ``statements`` as ``user_id`` in one round trip and one
    transaction; return each statement's rows (``[]`` for one that returns none).

    The chat turn's two writes go through this. The identity switch (role + ``app.user_id``,
    transaction-local: RLS on, nothing left on the pooled connection) and the statements go out
    as one pipeline ending in a single Sync, so they run in one implicit transaction: all of it
    commits, or an error rolls all of it back and is raised (a ``psycopg.Error``).

    No pre-ping round trip: this batch is the liveness check. A connection found dead is replaced
    and the batch sent once more on a pre-pinged one (which also invalidates a stale pool), so
    **the statements must be safe to run twice** -- the first try may have committed just before
    the connection died.
    """
    import psycopg

    if not isinstance(user_id, uuid.UUID):
        raise TypeError("pg_user_batch needs a uuid.UUID")
    engine = engine or get_engine()
    if engine.dialect.name != "postgresql":
        raise ValueError("pg_user_batch is for PostgreSQL")
    for attempt in (1, 2):
        token = _PRE_PING.set(attempt == 2)
        try:
            # the pool's connection itself (no Connection facade: nothing here goes through SQLAlchemy)
            pooled = engine.raw_connection()
        finally:
            _PRE_PING.reset(token)
        try:
            pg = pooled.driver_connection
            if not isinstance(pg, psycopg.Connection):
                raise TypeError("the PostgreSQL driver is not psycopg 3")
            try:
                return _run_batch(pg, user_id, statements)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                if not pg.broken and not pg.closed:
                    raise  # an error of the statements (e.g. cancelled), not of the connection
                pooled.invalidate()
                if attempt == 2:
                    raise
                log.warning("pooled PostgreSQL connection found dead; sending the batch again")
        finally:
            pooled.close()  # back to the pool (or discarded, when invalidated)
    raise AssertionError("unreachable")


def _run_batch(
    pg: psycopg.Connection[Any], user_id: uuid.UUID, statements: Sequence[Statement]
) -> list[list[tuple[Any, ...]]]:
    # Autocommit + pipeline: no BEGIN/COMMIT round trips; the Sync sent when the pipeline block
    # ends commits the implicit transaction the statements ran in (or rolls it back on an error).
    from psycopg.pq import ExecStatus

    pg.autocommit = True  # the pool hands out idle connections (its pre-ping runs in autocommit too)
    try:
        with pg.pipeline():
            pg.execute(_PG_SET_IDENTITY, (APP_ROLE, str(user_id)))
            cursors = [pg.execute(sql, params) for sql, params in statements]  # type: ignore[call-overload]
        # (the result status, not cursor.description, which would build a Column per column)
        return [
            cur.fetchall() if cur.pgresult is not None and cur.pgresult.status == ExecStatus.TUPLES_OK else []
            for cur in cursors
        ]
    finally:
        if not pg.broken and not pg.closed:
            pg.autocommit = False


def set_local_role(conn: Connection | Session, role: str) -> None:
    """PostgreSQL: act as ``role`` until the transaction ends (``SET LOCAL ROLE``)."""
    conn.execute(_SET_ROLE, {"role": role})


@contextmanager
def system_session(*, engine: Engine | None = None) -> Iterator[Session]:
    """A transaction for paths with no user yet or spanning users (sign-in lookup, admin, sweeps).

    PostgreSQL: ``SET LOCAL ROLE advisor_system``, whose policies are explicit (migration 0002).
    """
    engine = engine or get_engine()
    with Session(engine, expire_on_commit=False) as session, session.begin():
        if engine.dialect.name == "postgresql":
            set_local_role(session, SYSTEM_ROLE)
        yield session


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", (url or get_settings().database_url).replace("%", "%%"))
    cfg.attributes["configure_logger"] = False  # the app owns logging; alembic's CLI keeps its own
    return cfg


def migrate(url: str | None = None) -> str:
    """``alembic upgrade head``; idempotent and safe when several processes start at once.

    PostgreSQL serialises runners with an advisory lock taken inside ``migrations/env.py``;
    SQLite with an exclusive lock on a file beside the database. Returns the head revision.
    """
    from alembic import command

    url = url or get_settings().database_url
    cfg = alembic_config(url)
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".migrate.lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                command.upgrade(cfg, "head")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    else:
        command.upgrade(cfg, "head")
    return current_revision(url) or ""


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = get_engine() if url is None else engine_for(url)
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def main(argv: list[str] | None = None) -> int:
    """``python -m core.db migrate``: migrate the configured database (the release step)."""
    import sys

    from core.settings import SettingsError

    args = sys.argv[1:] if argv is None else argv
    if args != ["migrate"]:
        print("usage: python -m core.db migrate", file=sys.stderr)
        return 2
    try:
        print(migrate())
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
