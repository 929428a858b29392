"""Single sign-on configuration: the ``[auth]`` section Streamlit's ``st.login`` reads, checked at start.

In OIDC mode (``ADVISOR_AUTH_MODE=oidc``) people sign in through Streamlit's ``st.login``, which
reads the ``[auth]`` section of Streamlit's secrets (``.streamlit/secrets.toml``). Advisor calls
``st.login()`` without a provider name, so the section holds one unnamed provider:

    [auth]
    redirect_uri = "https://advisor.example.com/oauth2callback"
    cookie_secret = "<a long random string>"
    client_id = "..."
    client_secret = "..."
    server_metadata_url = "https://id.example.com/.well-known/openid-configuration"

``oidc_config_problem(section)`` returns one readable line naming what is missing or wrong (no
``[auth]`` section, an empty or missing key, a URL that is not absolute, a redirect URI that does
not end in ``/oauth2callback``, a short cookie secret, Authlib not installed), or ``None`` when
sign-in can work. It never repeats a configured value, so the line is safe to log and to show.

``oidc_endpoints_at_start(settings, section)`` is what ``core.startup.boot`` runs: in OIDC mode it
logs that line once when the configuration is unusable (the sign-in page then shows the same
problem instead of a broken button), and otherwise reads the provider's discovery document so the
read-only guard can allow the endpoints the server itself calls (discovery, token, keys, userinfo;
they may live on other hosts than the discovery document, as Google's do).

This module never imports Streamlit: the caller passes the section (``ui.auth_view.auth_secrets``).
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from core.egress import Endpoint, parse_endpoint

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "CALLBACK_PATH",
    "MIN_AUTHLIB",
    "MIN_COOKIE_SECRET_CHARS",
    "OidcConfig",
    "OidcConfigError",
    "check_auth_section",
    "discover_endpoints",
    "oidc_config_problem",
    "oidc_endpoints_at_start",
]

REQUIRED_KEYS: Final = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
CALLBACK_PATH: Final = "/oauth2callback"
MIN_COOKIE_SECRET_CHARS: Final = 32  # it signs the identity cookie: at least 128 bits of hex
MIN_AUTHLIB: Final = (1, 3, 2)  # the oldest Authlib Streamlit's st.login accepts
DISCOVERY_TIMEOUT_S: Final = 5.0
# the metadata fields naming endpoints the app's server calls itself (the browser visits the others)
SERVER_SIDE_ENDPOINTS: Final = ("token_endpoint", "jwks_uri", "userinfo_endpoint")
HINT: Final = "see 'Single sign-on' in README.md"

log = logging.getLogger("advisor.oidc")
_discovered_lock = threading.Lock()
_discovered: dict[str, tuple[Endpoint, ...]] = {}  # metadata URL -> endpoints (successes only)


class OidcConfigError(ValueError):
    """The single sign-on configuration cannot work; the message is one line, without any value."""


@dataclass(frozen=True)
class OidcConfig:
    """The checked ``[auth]`` section (the secrets themselves are not kept)."""

    redirect_uri: str
    server_metadata_url: str

    @property
    def metadata_endpoint(self) -> Endpoint:
        return _endpoint_of(self.server_metadata_url)


def _endpoint_of(url: str) -> Endpoint:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parse_endpoint((parts.hostname or "", port))


def _absolute_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def _installed_authlib() -> tuple[int, ...] | None:
    try:
        version = metadata.version("Authlib")
    except metadata.PackageNotFoundError:
        return None
    numbers = []
    for part in version.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        numbers.append(int(digits or 0))
    return tuple(numbers)


def check_auth_section(section: Mapping[str, object] | None) -> OidcConfig:
    """The checked ``[auth]`` section; raises ``OidcConfigError`` (one line) when it cannot work."""
    prefix = "OIDC sign-in is not configured:"
    if not section:
        raise OidcConfigError(f"{prefix} Streamlit's secrets have no [auth] section ({HINT}).")
    missing = [key for key in REQUIRED_KEYS if not isinstance(section.get(key), str) or not str(section[key]).strip()]
    if missing:
        raise OidcConfigError(f"{prefix} the [auth] section lacks {', '.join(missing)} ({HINT}).")
    redirect_uri = str(section["redirect_uri"]).strip()
    metadata_url = str(section["server_metadata_url"]).strip()
    if not _absolute_http_url(redirect_uri) or not urlsplit(redirect_uri).path.endswith(CALLBACK_PATH):
        raise OidcConfigError(
            f"{prefix} [auth] redirect_uri must be the app's absolute http(s) address ending in "
            f"{CALLBACK_PATH} ({HINT})."
        )
    if not _absolute_http_url(metadata_url):
        raise OidcConfigError(
            f"{prefix} [auth] server_metadata_url must be an absolute http(s) URL, the provider's "
            f"/.well-known/openid-configuration ({HINT})."
        )
    if len(str(section["cookie_secret"]).strip()) < MIN_COOKIE_SECRET_CHARS:
        raise OidcConfigError(
            f"{prefix} [auth] cookie_secret must be at least {MIN_COOKIE_SECRET_CHARS} random characters "
            f"(python -c \"import secrets; print(secrets.token_hex(32))\")."
        )
    authlib = _installed_authlib()
    if authlib is None or authlib < MIN_AUTHLIB:
        raise OidcConfigError(
            f"{prefix} Authlib {'.'.join(map(str, MIN_AUTHLIB))} or newer is not installed "
            "(pip install -r requirements.txt)."
        )
    return OidcConfig(redirect_uri=redirect_uri, server_metadata_url=metadata_url)


def oidc_config_problem(section: Mapping[str, object] | None) -> str | None:
    """One line saying why single sign-on cannot work with ``section``, or None when it can."""
    try:
        check_auth_section(section)
    except OidcConfigError as exc:
        return str(exc)
    return None


def discover_endpoints(config: OidcConfig, *, timeout_s: float = DISCOVERY_TIMEOUT_S) -> tuple[Endpoint, ...]:
    """The endpoints the app's server calls during a sign-in: the discovery document's own, and its
    token, key-set and userinfo endpoints. Raises ``OidcConfigError`` when the document cannot be read."""
    url = config.server_metadata_url
    with _discovered_lock:
        known = _discovered.get(url)
    if known is not None:
        return known
    where = f"the identity provider's discovery document at {config.metadata_endpoint}"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - checked http(s)
            document = json.loads(response.read(1_000_000))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = type(exc).__name__ if not isinstance(exc, urllib.error.HTTPError) else f"HTTP {exc.code}"
        raise OidcConfigError(f"{where} could not be read ({reason})") from None
    if not isinstance(document, dict):
        raise OidcConfigError(f"{where} is not a JSON object")
    endpoints = [config.metadata_endpoint]
    for key in SERVER_SIDE_ENDPOINTS:
        value = document.get(key)
        if isinstance(value, str) and _absolute_http_url(value):
            endpoints.append(_endpoint_of(value))
    found = tuple(dict.fromkeys(endpoints))
    with _discovered_lock:
        _discovered[url] = found
    return found


def oidc_endpoints_at_start(settings: Settings, section: Mapping[str, object] | None) -> tuple[Endpoint, ...]:
    """At start, in OIDC mode: one log line when the configuration cannot work, else the provider's
    endpoints for the guard's allow-list. Local mode: nothing (the ``[auth]`` section is unused)."""
    if settings.auth_mode != "oidc":
        return ()
    try:
        config = check_auth_section(section)
    except OidcConfigError as exc:
        log.error("%s Nobody can sign in until it is fixed.", exc)
        return ()
    try:
        return discover_endpoints(config)
    except OidcConfigError as exc:
        log.warning(
            "OIDC sign-in: %s; only %s is allowed for now, so a provider whose token endpoint is on "
            "another host fails at sign-in until the app restarts with the provider reachable.",
            exc,
            config.metadata_endpoint,
        )
        return (config.metadata_endpoint,)
