"""C11 / C19: the guard's network allow-list is built from the settings (core.egress).

In process: building the allow-list installs no hook.
"""

from __future__ import annotations

from pydantic import SecretStr

from core.egress import Endpoint, build_allow_list
from core.settings import Settings


def test_allow_list_comes_from_settings() -> None:
    settings = Settings(
        _env_file=None,
        openai_api_key=SecretStr("sk-test-openai-key-0000000000"),
        anthropic_base_url="http://127.0.0.1:8002",
        database_url="postgresql+psycopg://advisor:pw@db.internal:6543/advisor",
        redis_url="rediss://cache.internal/0",
        sentry_dsn=SecretStr("https://key@o1.ingest.example.invalid/42"),
    )
    endpoints, paths = build_allow_list(settings)
    assert set(endpoints) == {
        Endpoint("api.openai.com", 443),
        Endpoint("127.0.0.1", 8002),
        Endpoint("db.internal", 6543),
        Endpoint("cache.internal", 6379),
        Endpoint("o1.ingest.example.invalid", 443),
    }
    assert paths == []


def test_allow_list_for_the_embedded_default_is_empty() -> None:
    endpoints, paths = build_allow_list(Settings(_env_file=None))
    assert endpoints == [] and paths == []


def test_allow_list_unix_socket_database() -> None:
    settings = Settings(
        _env_file=None, database_url="postgresql+psycopg://advisor@/advisor?host=/run/pg&port=5433"
    )
    assert build_allow_list(settings) == ([], ["/run/pg/.s.PGSQL.5433"])
