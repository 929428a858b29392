"""Fixtures for the security tests: canary secrets and a clean logging / Sentry state."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from core.error_reports import shutdown_sentry
from core.log_setup import ROOT_LOGGER
from core.redaction import clear_registered_secrets
from core.settings import Settings


@dataclass(frozen=True)
class Canaries:
    openai_key: str
    anthropic_key: str
    db_password: str
    redis_password: str
    salt: str
    sentry_key: str
    jwt: str
    bearer: str
    body_password: str

    def all(self) -> list[str]:
        return [
            self.openai_key,
            self.anthropic_key,
            self.db_password,
            self.redis_password,
            self.salt,
            self.jwt,
            self.bearer,
            self.body_password,
        ]


def random_canaries() -> Canaries:
    tag = secrets.token_hex(6)
    return Canaries(
        openai_key=f"sk-proj-CANARY{tag}{secrets.token_urlsafe(24)}",
        anthropic_key=f"sk-ant-api03-CANARY{tag}{secrets.token_urlsafe(24)}",
        db_password=f"dbpw{tag}Canary",
        redis_password=f"rdpw{tag}Canary",
        salt=f"salt-canary-{tag}",  # no recognisable shape: only literal registration catches it
        sentry_key=secrets.token_hex(16),
        jwt=f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjYW5hcnk{tag}In0.{secrets.token_urlsafe(16)}",
        bearer=f"tok{tag}{secrets.token_urlsafe(20)}",
        body_password=f"Hunter2-{tag}!",
    )


def canary_settings(c: Canaries, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "openai_api_key": SecretStr(c.openai_key),
        "openai_base_url": "http://127.0.0.1:9/v1",
        "anthropic_api_key": SecretStr(c.anthropic_key),
        "database_url": f"postgresql+psycopg://advisor:{c.db_password}@127.0.0.1:5432/advisor",
        "redis_url": f"redis://:{c.redis_password}@127.0.0.1:6379/0",
        "sentry_dsn": SecretStr(f"http://{c.sentry_key}@127.0.0.1:9/1"),
        "deletion_salt": SecretStr(c.salt),
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def canaries() -> Canaries:
    return random_canaries()


@pytest.fixture
def clean_observability() -> Iterator[None]:
    """Undo setup_logging / init_sentry / register_secrets after the test."""
    yield
    shutdown_sentry()
    clear_registered_secrets()
    for name in (ROOT_LOGGER, ""):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if getattr(handler, "_advisor_handler", False):
                logger.removeHandler(handler)
    logging.getLogger(ROOT_LOGGER).setLevel(logging.NOTSET)


def log_every_secret_shape(c: Canaries, logger: logging.Logger) -> None:
    """Log each canary in every shape a secret reaches a log line: args, f-string, URL, JSON, repr,
    form, header, extra field and exception text (12 records)."""
    logger.info("openai key in text %s-%s", "x", c.openai_key)
    logger.info(f"anthropic key in the message {c.anthropic_key}")
    logger.warning("db url %s", f"postgresql+psycopg://advisor:{c.db_password}@db:5432/advisor")
    logger.info("redis %s", f"redis://:{c.redis_password}@127.0.0.1:6379/0")
    logger.info("body %s", json.dumps({"email": "a@b.c", "password": c.body_password}))
    logger.info("repr %r", {"password": c.body_password})
    logger.info("form password=%s&user=bob", c.body_password)
    logger.info("headers Authorization: Bearer %s", c.bearer)
    logger.info("jwt %s", c.jwt)
    logger.info("salt %s", c.salt)
    logger.info("extra field", extra={"detail": f"key={c.openai_key}"})
    try:
        raise ValueError(f"provider rejected key {c.openai_key} (salt {c.salt})")
    except ValueError:
        logger.exception("call failed with %s", c.anthropic_key)
