"""One Settings object for the whole app (env prefix ``ADVISOR_``, ``.env``, ``.streamlit/secrets.toml``)."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ROOT = Path(__file__).resolve().parent.parent
KNOWN_PROVIDERS = ("openai", "anthropic", "demo")
HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")  # an image host: ASCII (punycode)


class SettingsError(RuntimeError):
    """Raised at start when the configuration is invalid; its message is one readable line."""


# The published default of ADVISOR_DELETION_SALT (fine for a laptop; a deployment sets its own).
DEFAULT_DELETION_SALT = "advisor-deletion-records-v1"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ADVISOR_",
        env_file=".env",
        extra="ignore",
        validate_default=True,
    )

    # data
    database_url: str = "sqlite:///data/advisor.db"
    redis_url: str | None = None
    data_dir: Path = Path("data")
    migrate_on_start: bool = True

    # providers
    providers: str = Field(default="", description="fallback order, comma separated")
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-4-5"
    anthropic_max_tokens: int = Field(default=2048, ge=1, le=64_000)
    anthropic_prompt_cache: bool = Field(
        default=True,
        description="Anthropic's automatic prompt caching (5-minute cache; priced by pricing.toml)",
    )
    provider_connect_timeout_s: float = Field(default=5.0, gt=0, le=120)
    provider_first_token_timeout_s: float = Field(default=30.0, gt=0, le=600)
    provider_total_timeout_s: float = Field(default=180.0, gt=0, le=3600)
    provider_max_retries: int = Field(default=0, ge=0, le=5)
    breaker_failures: int = Field(default=3, ge=1, le=100)
    breaker_cooldown_s: float = Field(default=30.0, gt=0, le=3600)
    demo_delay_ms: int = Field(default=15, ge=0, le=1000)

    # chat
    max_message_chars: int = Field(default=8000, ge=1, le=100_000)
    history_turns_in_prompt: int = Field(default=20, ge=0, le=500)
    # a live turn's lease (core.run_leases): its heartbeat is written at least this often; a pending
    # run whose heartbeat is older than three of them was left by a process that stopped
    turn_heartbeat_s: float = Field(default=10.0, gt=0, le=600)
    # how often every app process closes pending runs whose heartbeat went stale (core.server_tasks)
    sweep_interval_s: float = Field(default=20.0, gt=0, le=3600)
    # on SIGTERM, how long the process's live turns may still finish normally before they are
    # closed as interrupted (shutdown) with their partial output
    shutdown_grace_s: float = Field(default=5.0, ge=0, le=600)
    # where images in answers may load from: comma-separated ``host`` (default port) or
    # ``host:port`` entries; empty: no remote image loads (core.safe_markdown)
    allowed_image_hosts: str = ""
    # largest ``data:`` image (decoded bytes) an answer may show inline
    max_data_image_bytes: int = Field(default=100_000, ge=0, le=10_000_000)

    # limits
    chat_turns_per_minute: int = Field(default=20, ge=1, le=10_000)
    signin_attempts_per_window: int = Field(default=5, ge=1, le=1000)
    signin_window_s: int = Field(default=300, ge=1, le=86_400)
    # attempts at one email from all client addresses together (signin_attempts_per_window is per
    # address): a guesser at one address cannot lock the owner out, guessers at many still stop here
    signin_attempts_per_email: int = Field(default=20, ge=1, le=100_000)
    # an address the account signed in from within this many days is not held to that total (its
    # owner is not locked out by guessers elsewhere); 0: no address is exempt
    signin_known_address_days: int = Field(default=30, ge=0, le=3650)
    # failed sign-ins from one client address across all emails (password spraying); higher than
    # the per-email limit because people behind one NAT or proxy share an address
    signin_attempts_per_client: int = Field(default=30, ge=1, le=100_000)
    # accounts created from one client address per hour (ADVISOR_SIGNUPS_PER_CLIENT_PER_HOUR)
    signups_per_client_per_hour: int = Field(default=5, ge=1, le=100_000)
    # reverse proxies of ours in front of the app that append to X-Forwarded-For (0: none; clients
    # connect directly). Behind a proxy with 0, every client has the proxy's address.
    trusted_proxy_hops: int = Field(default=0, ge=0, le=10)
    tokens_per_day: int = Field(default=500_000, ge=0)
    cost_per_month_usd: Decimal = Field(default=Decimal("50"), ge=0)

    # auth
    auth_mode: Literal["local", "oidc"] = "local"
    min_password_length: int = Field(default=10, ge=8, le=128)
    # a local sign-in lasts this many days after its last use (sliding; core.sessions)
    session_days: int = Field(default=14, ge=1, le=365)

    # observability and trust
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    sentry_dsn: SecretStr | None = None
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    sentry_environment: str = "production"
    guard: Literal["enforce", "log", "off"] = "enforce"
    deletion_salt: SecretStr = SecretStr(DEFAULT_DELETION_SALT)

    @field_validator("database_url")
    @classmethod
    def _check_db_url(cls, value: str) -> str:
        if not (value.startswith("sqlite") or value.startswith("postgresql")):
            raise ValueError("must start with sqlite:// or postgresql+psycopg://")
        return value

    @field_validator("providers")
    @classmethod
    def _check_providers(cls, value: str) -> str:
        names = [p.strip().lower() for p in value.split(",") if p.strip()]
        unknown = [n for n in names if n not in KNOWN_PROVIDERS]
        if unknown:
            raise ValueError(f"unknown provider(s) {', '.join(unknown)}; known: {', '.join(KNOWN_PROVIDERS)}")
        if len(set(names)) != len(names):
            raise ValueError("a provider is listed twice")
        return ",".join(names)

    @field_validator("allowed_image_hosts")
    @classmethod
    def _check_image_hosts(cls, value: str) -> str:
        entries = [h.strip().lower() for h in value.split(",") if h.strip()]
        for entry in entries:
            host, _, port = entry.partition(":")
            if not host or not all(ch in HOST_CHARS for ch in host) or (
                port and not (port.isdigit() and 0 < int(port) < 65536)
            ):
                raise ValueError(f"{entry!r} is not host or host:port (no scheme, path or wildcard)")
        return ",".join(entries)

    @field_validator("openai_base_url", "anthropic_base_url", "redis_url")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        secrets = TomlConfigSettingsSource(settings_cls, toml_file=Path(".streamlit/secrets.toml"))
        return (init_settings, env_settings, dotenv_settings, secrets, file_secret_settings)

    # derived -----------------------------------------------------------------
    @property
    def provider_order(self) -> list[str]:
        """Providers in fallback order; the configured ones when unset; ``["demo"]`` when none."""
        if self.providers:
            return self.providers.split(",")
        configured: list[str] = []
        if self.openai_api_key is not None or self.openai_base_url:
            configured.append("openai")
        if self.anthropic_api_key is not None or self.anthropic_base_url:
            configured.append("anthropic")
        return configured or ["demo"]

    @property
    def image_hosts(self) -> frozenset[str]:
        """``ADVISOR_ALLOWED_IMAGE_HOSTS`` as a set of lower-case ``host`` / ``host:port`` entries."""
        return frozenset(self.allowed_image_hosts.split(",")) - {""}

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    def secret_values(self) -> list[str]:
        """Literal values of every configured secret (for redaction)."""
        out: list[str] = []
        for value in (self.openai_api_key, self.anthropic_api_key, self.sentry_dsn, self.deletion_salt):
            if value is not None and value.get_secret_value():
                out.append(value.get_secret_value())
        return out


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "settings"
        parts.append(f"ADVISOR_{loc.upper()}: {err['msg']}")
    return "Invalid configuration: " + "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; raises ``SettingsError`` with one clear line when invalid."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc)) from None


def reset_settings_cache() -> None:
    """For tests: forget cached settings (and anything derived from them)."""
    get_settings.cache_clear()


def secret_hmac(message: str, *, domain: str = "") -> str:
    """HMAC-SHA256 (hex) of ``message`` keyed with the deployment's secret (``ADVISOR_DELETION_SALT``),
    prefixed by ``domain`` and a NUL when given, so that each use has its own key. A plain hash of an
    email or an address could be reversed by hashing candidates; this one not without the secret.
    Used for the deletion records' subject hashes (no domain), the rate limiter's keys and the
    hashes of sign-in addresses."""
    prefix = domain.encode("utf-8") + b"\0" if domain else b""
    key = prefix + get_settings().deletion_salt.get_secret_value().encode("utf-8")
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()
