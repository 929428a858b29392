"""What the status page shows: database, providers (with their circuit breakers), Redis, guard,
Sentry, version and provider mode — and never a secret.

``collect_status(settings)`` gathers everything into one ``StatusReport``; each probe catches its
own errors, so a broken dependency shows as "unreachable" with the error's *type* (never its
message, which may carry a URL with a password) instead of breaking the page. Secrets are masked
here, in the core, so no page can forget to: API keys keep only their last four characters
(``mask_secret``) and URLs lose their password (``mask_url``).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote

import core
from core import guard
from core.settings import DEFAULT_DELETION_SALT

if TYPE_CHECKING:
    from pydantic import SecretStr

    from core.settings import Settings

__all__ = [
    "DatabaseStatus",
    "ProviderStatus",
    "RedisStatus",
    "StatusReport",
    "collect_status",
    "database_status",
    "mask_secret",
    "mask_url",
    "provider_statuses",
    "redis_status",
]

REDIS_TIMEOUT_S = 1.0
MASK = "••••"


def mask_secret(value: SecretStr | str | None) -> str | None:
    """``"••••" + last 4 characters`` (just ``"••••"`` for a value of 8 characters or fewer)."""
    if value is None:
        return None
    raw = value if isinstance(value, str) else value.get_secret_value()
    if not raw:
        return None
    return MASK + raw[-4:] if len(raw) > 8 else MASK


# Query parameters whose value is (or may be) a credential: ``?password=…`` (libpq, redis-py), tokens.
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|auth|credential", re.IGNORECASE)


def mask_url(url: str | None) -> str | None:
    """The URL with its password and credential-like query values replaced by ``••••``
    (``postgresql://app:••••@db:5432/advisor``, ``redis://db:6379/0?password=••••``).

    Not ``urlsplit``: database drivers accept passwords holding ``/``, ``?`` or ``#``, which it
    would read as the start of the path, query or fragment (and so find no password at all). The
    user information ends at the last ``@`` instead; when in doubt more is hidden, never less.
    """
    if not url:
        return None
    scheme, sep, rest = url.partition("://")
    if not sep:
        return MASK if ("@" in url or "?" in url) else url  # not a URL we understand: show nothing of it
    userinfo = ""
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _password = rest[:at].partition(":")
        userinfo = f"{user}:{MASK}@" if colon else f"{user}@"
        rest = rest[at + 1 :]
    base, question, query = rest.partition("?")
    if question:
        pairs = []
        for pair in query.split("&"):
            name, eq, _value = pair.partition("=")
            pairs.append(f"{name}={MASK}" if eq and _SECRET_PARAM.search(unquote(name)) else pair)
        base = f"{base}?{'&'.join(pairs)}"
    return f"{scheme}://{userinfo}{base}"


@dataclass(frozen=True)
class DatabaseStatus:
    url: str  # password masked
    backend: str  # "postgresql" or "sqlite"
    reachable: bool
    current_revision: str | None
    head_revision: str | None
    error: str | None = None  # the error's type only

    @property
    def migrated(self) -> bool:
        current = self.current_revision
        return self.reachable and current is not None and current == self.head_revision


@dataclass(frozen=True)
class ProviderStatus:
    name: str
    model: str
    base_url: str | None  # password masked; None = the SDK's default endpoint
    api_key: str | None  # last 4 characters only
    breaker: str  # closed, open, half-open
    consecutive_failures: int
    last_error_kind: str | None
    last_error_at: datetime | None
    cooldown_remaining_s: float


@dataclass(frozen=True)
class RedisStatus:
    url: str  # password masked
    reachable: bool
    latency_ms: float | None
    error: str | None = None


@dataclass(frozen=True)
class StatusReport:
    version: str
    database: DatabaseStatus
    providers: list[ProviderStatus]
    providers_error: str | None
    redis: RedisStatus | None  # None: not configured (in-process memory)
    guard_mode: str  # the active mode ("off" when not installed)
    guard_configured: str  # ADVISOR_GUARD
    sentry_on: bool
    demo_mode: bool
    # ADVISOR_DELETION_SALT left at its published default: the deletion records' subject hashes and
    # the rate limiter's keys are then keyed with a value anyone can read in the source
    default_secret: bool = False


def _head_revision(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    from core.db import alembic_config

    heads = ScriptDirectory.from_config(alembic_config(url)).get_heads()
    return ",".join(sorted(heads)) or None


def database_status(settings: Settings) -> DatabaseStatus:
    """Reachable, current revision vs the migrations' head (never migrates anything)."""
    from core.db import current_revision

    url = settings.database_url
    backend = "postgresql" if settings.is_postgres else "sqlite"
    masked = mask_url(url) or ""
    head: str | None
    try:
        head = _head_revision(url)
    except Exception:
        head = None
    try:
        current = current_revision(url)
    except Exception as exc:
        return DatabaseStatus(masked, backend, False, None, head, type(exc).__name__)
    return DatabaseStatus(masked, backend, True, current, head)


def provider_statuses(settings: Settings) -> list[ProviderStatus]:
    """Each configured provider in fallback order, with its breaker state in this process."""
    from core.providers.router import build_router

    keys: dict[str, tuple[str | None, SecretStr | None]] = {
        "openai": (settings.openai_base_url, settings.openai_api_key),
        "anthropic": (settings.anthropic_base_url, settings.anthropic_api_key),
    }
    out: list[ProviderStatus] = []
    for state in build_router(settings).breaker_states():
        base_url, key = keys.get(state.name, (None, None))
        out.append(
            ProviderStatus(
                name=state.name,
                model=state.model,
                base_url=mask_url(base_url),
                api_key=mask_secret(key),
                breaker=state.state.value,
                consecutive_failures=state.consecutive_failures,
                last_error_kind=state.last_error_kind,
                last_error_at=state.last_error_at,
                cooldown_remaining_s=round(state.cooldown_remaining_s, 1),
            )
        )
    return out


def redis_status(settings: Settings, *, timeout_s: float = REDIS_TIMEOUT_S) -> RedisStatus | None:
    """PING the configured Redis with a short timeout; ``None`` when Redis is not configured."""
    if not settings.redis_url:
        return None
    import redis

    masked = mask_url(settings.redis_url) or ""
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
    )
    try:
        t0 = time.perf_counter()
        client.ping()
        latency = (time.perf_counter() - t0) * 1000
    except Exception as exc:
        return RedisStatus(masked, False, None, type(exc).__name__)
    finally:
        client.close()
    return RedisStatus(masked, True, round(latency, 1))


def _sentry_on() -> bool:
    import sentry_sdk

    return bool(sentry_sdk.get_client().is_active())


def collect_status(settings: Settings) -> StatusReport:
    """Everything the status page shows; secrets masked, errors reduced to their type."""
    from core.providers.router import ProviderConfigError

    providers: list[ProviderStatus] = []
    providers_error: str | None = None
    try:
        providers = provider_statuses(settings)
    except ProviderConfigError as exc:  # our own message: names the missing setting, no value
        providers_error = str(exc)
    except Exception as exc:
        providers_error = type(exc).__name__
    return StatusReport(
        version=core.__version__,
        database=database_status(settings),
        providers=providers,
        providers_error=providers_error,
        redis=redis_status(settings),
        guard_mode=guard.guard_mode(),
        guard_configured=settings.guard,
        sentry_on=_sentry_on(),
        demo_mode=settings.provider_order == ["demo"],
        default_secret=settings.deletion_salt.get_secret_value() == DEFAULT_DELETION_SALT,
    )
