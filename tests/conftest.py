"""Shared fixtures: throwaway PostgreSQL databases (from a migrated template), SQLite files, Redis.

PostgreSQL and Redis are the real servers on 127.0.0.1 (``make test`` makes sure they run).
Every test database is created here and dropped after the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from core import db as core_db
from core.settings import reset_settings_cache

pytest_plugins = ["tests.chat_fixtures"]

PG_ADMIN_DSN = os.environ.get("ADVISOR_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("ADVISOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _pg_url(dbname: str) -> str:
    u = make_url(PG_ADMIN_DSN.replace("postgresql://", "postgresql+psycopg://", 1))
    return u.set(database=dbname).render_as_string(hide_password=False)


def _admin_exec(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def create_pg_database(template: str | None = None) -> str:
    name = f"advisor_t_{uuid.uuid4().hex[:12]}"
    _admin_exec(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def drop_pg_database(name: str) -> None:
    core_db.dispose_engines()
    _admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _clean_advisor_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test starts from default settings (no ADVISOR_* from the shell), data under tmp_path."""
    for key in list(os.environ):
        if key.startswith("ADVISOR_") and not key.startswith("ADVISOR_TEST_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ADVISOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ADVISOR_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'advisor.db'}")
    monkeypatch.setenv("ADVISOR_GUARD", "off")
    reset_settings_cache()
    yield
    core_db.dispose_engines()
    reset_settings_cache()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database migrated to head once per test session; test databases are copies of it."""
    name = create_pg_database()
    try:
        core_db.migrate(_pg_url(name))
        core_db.dispose_engines()
        yield name
    finally:
        drop_pg_database(name)


def _use_new_pg_database(monkeypatch: pytest.MonkeyPatch, template: str | None) -> Iterator[str]:
    """Create a database (a copy of ``template`` when given), point the settings at it, drop it after."""
    name = create_pg_database(template=template)
    url = _pg_url(name)
    monkeypatch.setenv("ADVISOR_DATABASE_URL", url)
    reset_settings_cache()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture
def pg_url(pg_template: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated PostgreSQL database; the app's settings point at it."""
    yield from _use_new_pg_database(monkeypatch, pg_template)


@pytest.fixture
def empty_pg_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, empty (unmigrated) PostgreSQL database."""
    yield from _use_new_pg_database(monkeypatch, None)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite file database; the app's settings already point at it."""
    url = f"sqlite:///{tmp_path / 'data' / 'advisor.db'}"
    core_db.migrate(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """The same test on a migrated SQLite file and on a migrated PostgreSQL database."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")  # type: ignore[no-any-return]
    return request.getfixturevalue("pg_url")  # type: ignore[no-any-return]


@pytest.fixture
def set_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """set_env(OPENAI_MODEL="x") sets ADVISOR_OPENAI_MODEL and forgets cached settings."""

    def _set(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(f"ADVISOR_{key.upper()}", value)
        reset_settings_cache()
        core_db.dispose_engines()

    return _set
