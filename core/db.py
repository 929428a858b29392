"""Engines, identity-carrying sessions, and migrations at start.

``user_session(user_id)`` is how app code reads or writes a user's rows. On PostgreSQL it opens a
transaction, switches to the NOLOGIN role ``advisor_app`` and sets ``app.user_id``, both
transaction-local, so row-level security applies and a pooled connection never keeps an identity.
``system_session()`` is for what has no user yet (sign-in lookups, sign-up) and for maintenance.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, create_engine

from core.settings import ROOT, Settings, get_settings

log = logging.getLogger("advisor.db")

APP_ROLE = "advisor_app"
SYSTEM_ROLE = "advisor_system"
_SET_ROLE = text("SELECT set_config('role', :role, true)")
# One round trip: the transaction-local role switch and the user id (set_config(..., true) is SET LOCAL).
_SET_IDENTITY = text("SELECT set_config('role', :role, true), set_config('app.user_id', :uid, true)")
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
    # pool_pre_ping: a pooled connection that died (a database restart, a killed backend) is found
    # on checkout and replaced, so a turn's writes after a restart go to a live connection.
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        kwargs.update(connect_args={"check_same_thread": False, "timeout": 30})
    else:
        # LIFO: the connection used last is handed out next (its backend's caches are warm);
        # connections left idle are recycled.
        kwargs.update(pool_size=pool_size, max_overflow=pool_size * 2, pool_recycle=1800, pool_use_lifo=True)
    engine = create_engine(url, **kwargs)
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


def _set_identity(conn: Connection | Session, role: str, user_id: uuid.UUID) -> None:
    """PostgreSQL: act as ``role`` with ``app.user_id`` until the transaction ends (``SET LOCAL``)."""
    conn.execute(_SET_IDENTITY, {"role": role, "uid": str(user_id)})


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
            _set_identity(session, APP_ROLE, user_id)
        yield session


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
