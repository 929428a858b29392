"""The provider contract: messages in, a stream of typed events out, one error taxonomy.

Every provider (OpenAI-compatible, Anthropic, the offline demo) implements :class:`Provider`.
``stream()`` yields, in order: at most one :class:`InputUsage` (a provider that reports the input
counts when its stream starts: Anthropic's ``message_start``), zero or more :class:`TextDelta`, at
most one :class:`Usage`, then exactly one :class:`Done`. Any failure is raised as :class:`ProviderError` -- never an SDK
exception -- so the router and the chat layer handle one taxonomy.

``Usage`` is normalised across providers: ``input_tokens`` counts **non-cached** input only
(OpenAI's ``prompt_tokens`` includes cached tokens, so they are subtracted; Anthropic's
``input_tokens`` already excludes cache reads and writes). The total input of a request is
``input_tokens + cached_input_tokens + cache_write_tokens`` (:attr:`Usage.total_input_tokens`).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import httpx2

Role = Literal["user", "assistant"]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One prior or current turn; the system prompt is passed separately."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the provider reported them (never estimated, except by the demo provider).

    ``input_tokens`` is non-cached input; cache reads and cache writes are counted separately.
    """

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cached_input_tokens + self.cache_write_tokens


@dataclass(frozen=True, slots=True)
class InputUsage:
    """The input side of a request as the provider reported it before its answer ended.

    Anthropic reports the input counts at the start of a stream (``message_start``); the output
    count only at its end. A stream cut in between (a failure, or the user's stop) leaves the input
    known and the output unknown. It is yielded as an event when the stream starts, and kept on a
    :class:`ProviderError` that ends the stream. OpenAI reports usage only in the stream's last
    chunk, so an OpenAI answer stopped early has no token counts at all.
    """

    input_tokens: int
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Done:
    stop_reason: str | None
    provider_request_id: str | None


ProviderEvent = TextDelta | InputUsage | Usage | Done


class ErrorKind(StrEnum):
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"

    @property
    def fallback_ok(self) -> bool:
        """Transient, provider-side trouble: another provider may well succeed."""
        return self in _FALLBACK_KINDS


_FALLBACK_KINDS = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.SERVER, ErrorKind.TIMEOUT, ErrorKind.CONNECTION})


class ProviderError(Exception):
    """The one error a provider raises. ``message`` is ours (sanitised), never a raw SDK dump."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        retry_after: float | None = None,
        input_usage: InputUsage | None = None,
    ) -> None:
        self.kind = kind
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after
        self.input_usage = input_usage  # what the provider had reported of the input, if anything
        super().__init__(str(self))

    def __str__(self) -> str:
        status = f" (HTTP {self.status_code})" if self.status_code is not None else ""
        return f"{self.provider}: {self.kind.value}{status}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"ProviderError(kind={self.kind.value!r}, provider={self.provider!r}, "
            f"status_code={self.status_code!r}, retry_after={self.retry_after!r}, message={self.message!r})"
        )


def malformed(provider: str, what: str) -> ProviderError:
    """A streamed event that is not what the API sends (kind server: the next provider is tried)."""
    return ProviderError(ErrorKind.SERVER, f"malformed event in stream: {what}", provider=provider)


def checked(value: object, kind: type[_T], provider: str, what: str) -> _T:
    """``value`` if it is a ``kind``, else a malformed event.

    The SDKs build their typed events from the JSON sent without validating it (so that a value the
    API adds later does not break a client): an event of the wrong shape arrives as a model holding
    values of the wrong types, or as the bare JSON value. The adapters check each value they read
    with this, or with :func:`token_count`.
    """
    if isinstance(value, kind):
        return value
    raise malformed(provider, what)


def token_count(value: object, provider: str, name: str, *, required: bool = False) -> int:
    """A token count from an event: a non-negative int (absent or null: 0, unless ``required``);
    anything else is a malformed event, never a guess."""
    if value is None and not required:
        return 0
    if type(value) is not int or value < 0:
        raise malformed(provider, f"usage {name} is not a count")
    return value


@runtime_checkable
class Provider(Protocol):
    name: str
    model: str

    def stream(self, messages: Sequence[ChatMessage], *, system: str, request_id: str) -> Iterator[ProviderEvent]: ...


@dataclass(frozen=True, slots=True)
class ProviderTimeouts:
    """connect: TCP/TLS connect; first_token: until the first text delta (also the per-read
    socket timeout, so a stall between chunks is bounded too); total: the whole stream."""

    connect_s: float = 5.0
    first_token_s: float = 30.0
    total_s: float = 180.0

    def httpx_timeout(self) -> httpx2.Timeout:
        read = min(self.first_token_s, self.total_s)
        return httpx2.Timeout(connect=self.connect_s, read=read, write=read, pool=self.connect_s)


class Deadline:
    """Enforces the first-token and total timeouts between chunks (the socket read timeout
    bounds each blocking read; this bounds the sum). ``check`` runs once per chunk, so it is one
    clock read and one comparison against the limit in force (first token, then total)."""

    def __init__(self, timeouts: ProviderTimeouts, provider: str, clock: _Clock = time.monotonic) -> None:
        self._timeouts = timeouts
        self._provider = provider
        self._clock = clock
        self._start = clock()
        self._got_text = False
        self._limit = self._start + min(timeouts.first_token_s, timeouts.total_s)

    @property
    def got_text(self) -> bool:
        return self._got_text

    @got_text.setter
    def got_text(self, value: bool) -> None:
        if value != self._got_text:
            self._got_text = value
            t = self._timeouts
            self._limit = self._start + (t.total_s if value else min(t.first_token_s, t.total_s))

    def check(self) -> None:
        if self._clock() > self._limit:
            self._expired()

    def _expired(self) -> None:
        t = self._timeouts
        if self._got_text or t.total_s <= t.first_token_s or self._clock() - self._start > t.total_s:
            raise ProviderError(
                ErrorKind.TIMEOUT,
                f"stream exceeded the total timeout of {t.total_s:g}s",
                provider=self._provider,
            )
        raise ProviderError(
            ErrorKind.TIMEOUT,
            f"no text within the first-token timeout of {t.first_token_s:g}s",
            provider=self._provider,
        )


class _Clock(Protocol):
    def __call__(self) -> float: ...


# --- helpers shared by the SDK adapters --------------------------------------------------------

_KEYLIKE = re.compile(r"\b(?:sk|pk|rk|key|sess)[-_][A-Za-z0-9_\-\*\.]{6,}", re.IGNORECASE)
_MAX_MESSAGE = 300


def sanitize_message(text: str, secrets: Iterable[str] = ()) -> str:
    """Shorten a server-supplied message and remove anything that looks like a credential."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _KEYLIKE.sub("[redacted]", text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parsed = email.utils.parsedate_to_datetime(value) if value else None
    if parsed is None:
        return None
    return max(0.0, parsed.timestamp() - time.time())


def kind_for_status(status: int) -> ErrorKind:
    """HTTP status → error kind (shared by both SDK adapters)."""
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (401, 402, 403):
        return ErrorKind.AUTH  # bad key, no access, or billing: configuration, not transient
    if status == 408:
        return ErrorKind.TIMEOUT
    if status >= 500:
        return ErrorKind.SERVER  # includes 529 overloaded
    if status == 499:
        return ErrorKind.CONNECTION
    return ErrorKind.BAD_REQUEST  # 400, 404, 409, 413, 422, ...


class SDKProvider:
    """What the SDK adapters share: name, model, timeouts, the key (for redaction) and one pooled client.

    Subclasses build ``self._client`` from ``self._api_key`` and ``self._timeouts`` in their
    ``__init__`` after calling this one, and implement ``stream``.
    """

    _client: Any

    def __init__(
        self,
        *,
        name: str,
        model: str,
        api_key: str | None,
        base_url: str | None,
        timeouts: ProviderTimeouts | None,
    ) -> None:
        key = placeholder_key(api_key, base_url)
        if key is None:
            raise ValueError(f"{name}: an API key is required unless a base URL is set")
        self.name = name
        self.model = model
        self._api_key = key
        self._timeouts = timeouts or ProviderTimeouts()
        self._secrets = tuple(s for s in (api_key,) if s)

    def __repr__(self) -> str:
        url = str(self._client.base_url)
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r}, base_url={url!r})"

    def close(self) -> None:
        self._client.close()


def placeholder_key(api_key: str | None, base_url: str | None) -> str | None:
    """Self-hosted OpenAI/Anthropic-compatible servers need no key; the SDKs still want one."""
    if api_key:
        return api_key
    return "not-needed" if base_url else None
