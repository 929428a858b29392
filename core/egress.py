"""The network allow-list of the read-only guard: where the app may connect (claims C11 and C19).

``build_allow_list(settings)`` lists every endpoint the configuration names: each provider's base
URL (``api.openai.com:443`` / ``api.anthropic.com:443`` when a key is set without one), the
PostgreSQL host:port (or its Unix socket), Redis host:port (or socket) and the Sentry DSN host:port.
``core.guard.install_guard`` adds its ``extra_allowed`` endpoints (e.g. a test's loopback stub).

``endpoint_allowed`` decides a connection: an address is allowed when it is listed, or when it
came out of resolving an allowed host name (the guard learns those addresses by wrapping
``socket.getaddrinfo``); the ports are those of the host name in the current allow-list. A host
*name* is matched by name; DNS itself is trusted.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "Endpoint",
    "ObservedConnection",
    "build_allow_list",
    "endpoint_allowed",
    "normalise_host",
    "parse_endpoint",
]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "redis": 6379, "rediss": 6379, "postgresql": 5432}


class Endpoint(NamedTuple):
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ObservedConnection:
    """One attempted connection (or datagram): the address, the host name it was resolved from."""

    event: str
    host: str
    port: int | None
    allowed: bool
    hostname: str | None = None

    @property
    def endpoint(self) -> str:
        return str(Endpoint(self.host, self.port or 0)) if self.port is not None else self.host


def normalise_host(host: str) -> str:
    """A host name lower-cased without its trailing dot, or an address in its canonical form
    (brackets and IPv6 scope id dropped, an IPv4-mapped IPv6 address as IPv4)."""
    host = host.strip().strip("[]").lower()
    if "%" in host:  # IPv6 scope id
        host = host.split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host.rstrip(".")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def _url_endpoints(url: str, default_port: int | None = None) -> tuple[list[Endpoint], list[str]]:
    """Endpoints and Unix socket paths a service URL points at."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0].lower()
    endpoints: list[Endpoint] = []
    paths: list[str] = []
    if scheme == "unix":
        if parts.path:
            paths.append(parts.path)
        return endpoints, paths
    port = parts.port or default_port or _DEFAULT_PORTS.get(scheme)
    if parts.hostname:
        if port is not None:
            endpoints.append(Endpoint(normalise_host(parts.hostname), port))
    elif scheme == "postgresql":
        query = parse_qs(parts.query)
        hosts = query.get("host", [])
        qport = int(query.get("port", [str(port or 5432)])[0])
        for host in hosts:
            if host.startswith("/"):
                paths.append(os.path.join(host, f".s.PGSQL.{qport}"))
            else:
                endpoints.append(Endpoint(normalise_host(host), qport))
        if not hosts:  # libpq default: the local socket directory
            paths.extend(f"{d}/.s.PGSQL.{qport}" for d in ("/var/run/postgresql", "/tmp"))  # noqa: S108
    return endpoints, paths


def build_allow_list(settings: Settings) -> tuple[list[Endpoint], list[str]]:
    """Every endpoint (and Unix socket path) the configuration says the app may connect to."""
    endpoints: list[Endpoint] = []
    paths: list[str] = []

    def add(url: str | None, default_port: int | None = None) -> None:
        if url:
            e, p = _url_endpoints(url, default_port)
            endpoints.extend(e)
            paths.extend(p)

    order = settings.provider_order
    if "openai" in order or settings.openai_api_key is not None or settings.openai_base_url:
        add(settings.openai_base_url or "https://api.openai.com/v1")
    if "anthropic" in order or settings.anthropic_api_key is not None or settings.anthropic_base_url:
        add(settings.anthropic_base_url or "https://api.anthropic.com")
    if settings.is_postgres:
        add(settings.database_url)
    add(settings.redis_url)
    if settings.sentry_dsn is not None:
        add(settings.sentry_dsn.get_secret_value())
    return endpoints, paths


def parse_endpoint(item: Endpoint | tuple[str, int] | str) -> Endpoint:
    """An endpoint given as ``("127.0.0.1", 8765)`` or ``"127.0.0.1:8765"``, its host normalised."""
    if isinstance(item, str):
        host, _, port = item.rpartition(":")
        return Endpoint(normalise_host(host), int(port))
    return Endpoint(normalise_host(item[0]), int(item[1]))


def endpoint_allowed(
    hosts: Mapping[str, Set[int]], resolved: Mapping[str, Set[str]], host: str, port: int
) -> bool:
    """Whether a connection to ``host:port`` (normalised) is allowed: ``hosts`` maps each allowed
    host to its ports; ``resolved`` maps an address to the allowed host names it was resolved from."""
    ports = hosts.get(host)
    if ports is not None and port in ports:
        return True
    for name in resolved.get(host, ()):
        name_ports = hosts.get(name)
        if name_ports is not None and port in name_ports:
            return True
    return False
