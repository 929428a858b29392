"""Which URLs in model output may be a link or an image, and how their destination is named.

A URL is judged by its scheme and host as a browser would read them. Anything this module cannot
read with certainty (an odd character in the host, no host, a scheme it does not know) is refused:
refusing shows the URL as text, never loads or links it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

LINK_SCHEMES = ("http", "https", "mailto")
DEFAULT_PORTS = {"http": 80, "https": 443}
DATA_IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789.-")
URL_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset("<>\\\"`{}|^")
SHOWN_PATH_CHARS = 60


@dataclass(frozen=True)
class ImagePolicy:
    """Where images may load from: ``allowed_hosts`` holds ``host`` (the scheme's default port) or
    ``host:port`` entries, lower-case; ``data:`` images up to ``max_data_bytes`` decoded bytes."""

    allowed_hosts: frozenset[str] = frozenset()
    max_data_bytes: int = 0


@dataclass(frozen=True)
class Web:
    """An ``http(s)://`` URL read strictly: host lower-case, port explicit or the default."""

    scheme: str
    host: str
    port: int
    explicit_port: bool
    path: str
    has_query: bool

    @property
    def shown_host(self) -> str:
        return f"{self.host}:{self.port}" if self.explicit_port else self.host

    def shown(self) -> str:
        """``host/path`` (query and fragment left out, a long path shortened) for a text label."""
        path = self.path if self.path != "/" else ""
        if len(path) > SHOWN_PATH_CHARS:
            path = path[:SHOWN_PATH_CHARS] + "…"
        return self.shown_host + path + ("?…" if self.has_query else "")


def is_plain_url(url: str) -> bool:
    """Printable ASCII without spaces, quotes, angle brackets or backslashes (a URL markdown-it has
    normalised has this form; one that has not is refused rather than guessed at)."""
    return bool(url) and all(ch in URL_CHARS for ch in url)


def _host_ok(host: str) -> bool:
    return bool(host) and all(ch in HOST_CHARS for ch in host) and not host.startswith(("-", "."))


def parse_web(url: str) -> Web | None:
    """``url`` as an ``http(s)://host[:port]/…`` URL, or None when it is anything else or cannot be
    read unambiguously (user info, percent-encoded or unusual host characters, a bad port)."""
    if not is_plain_url(url):
        return None
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS or not rest.startswith("//") or rest.startswith("///"):
        return None
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    netloc = parts.netloc
    if "@" in netloc or "%" in netloc:
        return None
    host = (parts.hostname or "").lower()
    if not _host_ok(host):
        return None
    return Web(
        scheme=scheme,
        host=host,
        port=DEFAULT_PORTS[scheme] if port is None else port,
        explicit_port=port is not None,
        path=parts.path,
        has_query=bool(parts.query),
    )


@dataclass(frozen=True)
class LinkTarget:
    """A link that may stay clickable, with the destination to show beside its text."""

    href: str
    shown: str

    def named_by(self, text: str) -> bool:
        """Whether ``text`` (the link's visible text) already names this destination."""
        words = text.strip()
        if not words or any(ch.isspace() for ch in words):
            return False
        if self.href.lower().startswith("mailto:"):
            return words.lower() in (self.shown.lower(), self.href.lower())
        candidate = parse_web(words if "://" in words else "http://" + words)
        return candidate is not None and candidate.shown_host == self.shown


def link_target(href: str) -> LinkTarget | None:
    """The link ``href`` may stay, or None: only ``http``, ``https`` and ``mailto`` links whose
    destination can be read are links; ``javascript:``, ``data:``, ``file:``, relative and
    protocol-relative links are not."""
    web = parse_web(href)
    if web is not None:
        return LinkTarget(href=href, shown=web.shown_host)
    scheme, sep, address = href.partition(":")
    if sep and scheme.lower() == "mailto" and is_plain_url(href) and "@" in address and "/" not in address:
        return LinkTarget(href=href, shown=address)
    return None


def data_image_size(url: str) -> int | None:
    """Decoded size of a ``data:image/<png|jpeg|gif|webp>;base64,…`` URL, or None for any other."""
    head, sep, payload = url.partition(",")
    if not sep or not head.lower().startswith("data:"):
        return None
    media, _, encoding = head[5:].partition(";")
    if media.lower() not in DATA_IMAGE_TYPES or encoding.lower() != "base64":
        return None
    try:
        return len(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError):
        return None


def image_allowed(src: str, policy: ImagePolicy) -> bool:
    """Whether the browser may load ``src``: an ``http(s)`` URL on an allowed host (and port), or a
    small enough ``data:`` raster image. Everything else is shown as text."""
    size = data_image_size(src)
    if size is not None:
        return size <= policy.max_data_bytes
    web = parse_web(src)
    if web is None:
        return False
    keys = {f"{web.host}:{web.port}"}
    if web.port == DEFAULT_PORTS[web.scheme]:  # an entry without a port means the default one
        keys.add(web.host)
    return not keys.isdisjoint(policy.allowed_hosts)


def image_label(src: str) -> str:
    """What a refused image is shown as: where it would have come from."""
    size = data_image_size(src)
    if size is not None:
        kind = src[5:].partition(";")[0].lower().removeprefix("image/").upper()
        return f"inline {kind} image, {size:,} bytes"
    web = parse_web(src)
    if web is not None:
        return web.shown()
    shown = src if len(src) <= SHOWN_PATH_CHARS else src[:SHOWN_PATH_CHARS] + "…"
    return shown
