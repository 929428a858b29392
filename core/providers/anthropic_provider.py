"""Anthropic Messages, streamed through ``client.messages.create(stream=True)`` (typed raw events)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import anthropic
import httpx2
import pydantic
from anthropic.types import (
    CacheControlEphemeralParam,
    Message,
    MessageDeltaUsage,
    MessageParam,
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
)
from anthropic.types import TextDelta as TextBlockDelta
from anthropic.types import Usage as MessageUsage

from core.providers.base import (
    ChatMessage,
    Deadline,
    Done,
    ErrorKind,
    InputUsage,
    ProviderError,
    ProviderEvent,
    ProviderTimeouts,
    SDKProvider,
    TextDelta,
    Usage,
    checked,
    kind_for_status,
    malformed,
    parse_retry_after,
    sanitize_message,
    token_count,
)

# ``error.type`` of an error event sent inside a 200 stream → kind
_STREAM_ERROR_KINDS = {
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "overloaded_error": ErrorKind.SERVER,
    "api_error": ErrorKind.SERVER,
    "timeout_error": ErrorKind.TIMEOUT,
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
    "billing_error": ErrorKind.AUTH,
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "not_found_error": ErrorKind.BAD_REQUEST,
    "request_too_large": ErrorKind.BAD_REQUEST,
}


class AnthropicProvider(SDKProvider):
    """Streams ``client.messages.create(stream=True)`` and reads its typed events by their ``type``.

    Usage: input and cache counts from ``message_start`` (passed on at once as ``InputUsage``, so an
    answer the user stops still records its input); the output count (cumulative) from
    ``message_delta``, which may also restate the input counts.

    **When the answer is complete.** The API ends every stream with a ``message_stop`` event; the
    SDK's ``Stream`` passes it on like any other event and ends quietly when the body ends, so a
    stream that ends without ``message_stop`` was cut short: a ``connection`` error, and the run is
    ``interrupted``, never ``ok``. The input counts already reported by ``message_start`` stay on
    the error (``ProviderError.input_usage``).
    """

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 2048,
        prompt_cache: bool = True,
        timeouts: ProviderTimeouts | None = None,
        max_retries: int = 0,
        name: str = "anthropic",
    ) -> None:
        super().__init__(name=name, model=model, api_key=api_key, base_url=base_url, timeouts=timeouts)
        self._max_tokens = max_tokens
        # Automatic prompt caching (the top-level ``cache_control`` of ``messages.create``): the API
        # puts the cache breakpoint on the last cacheable block and moves it as the conversation
        # grows, so a turn re-reads the system prompt and the history it shares with the previous
        # turn at the cache-read price. The 5-minute cache only: pricing.toml prices its writes (a
        # 1-hour write costs more). Too short a prompt is simply not cached.
        self._cache_control: CacheControlEphemeralParam | anthropic.Omit = (
            {"type": "ephemeral", "ttl": "5m"} if prompt_cache else anthropic.omit
        )
        self._client = anthropic.Anthropic(
            api_key=self._api_key,
            base_url=base_url,
            timeout=self._timeouts.httpx_timeout(),
            max_retries=max_retries,
        )

    def stream(
        self, messages: Sequence[ChatMessage], *, system: str, request_id: str
    ) -> Iterator[ProviderEvent]:
        payload: list[MessageParam] = []
        for m in messages:
            if m.role == "user":
                payload.append({"role": "user", "content": m.content})
            else:
                payload.append({"role": "assistant", "content": m.content})
        deadline = Deadline(self._timeouts, self.name)
        reader = _MessageReader(self.name)
        try:
            with self._client.messages.create(
                model=self.model,
                max_tokens=self._max_tokens,
                messages=payload,
                system=system or anthropic.omit,
                cache_control=self._cache_control,
                stream=True,
                extra_headers={"X-Client-Request-Id": request_id},
            ) as stream:
                header_id = stream.response.headers.get("request-id")
                for event in stream:
                    deadline.check()
                    got = reader.read(event)
                    if isinstance(got, str):
                        deadline.got_text = True
                        yield TextDelta(got)
                    elif got is not None:
                        yield got  # message_start's input counts: known even if the answer is stopped
        except Exception as exc:
            error = exc if isinstance(exc, ProviderError) else map_anthropic_error(
                exc, provider=self.name, secrets=self._secrets
            )
            error.input_usage = reader.input_usage()
            raise error from None

        if not reader.finished:
            raise ProviderError(
                ErrorKind.CONNECTION, "stream ended before message_stop", provider=self.name,
                input_usage=reader.input_usage(),
            )
        if reader.saw_usage:
            yield Usage(reader.input_tokens, reader.output_tokens, reader.cached, reader.written)
        yield Done(stop_reason=reader.stop_reason, provider_request_id=header_id or reader.message_id)


class _MessageReader:
    """Reads one streamed message's typed events by their ``type``: its text, token counts, stop
    reason, id, and whether ``message_stop`` came. Other event types (``content_block_start``,
    ``content_block_stop``, ones the API adds later) carry nothing this needs."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self.input_tokens = self.output_tokens = self.cached = self.written = 0
        self.saw_usage = False
        self.stop_reason: str | None = None
        self.message_id: str | None = None
        self.finished = False

    def read(self, event: object) -> str | InputUsage | None:
        """The text ``event`` carries, if any, or ``message_start``'s input counts; its other
        contents are recorded."""
        p = self._provider
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            delta = checked(event, RawContentBlockDeltaEvent, p, "content_block_delta").delta
            if isinstance(delta, TextBlockDelta) and delta.type == "text_delta" and delta.text:
                return checked(delta.text, str, p, "a delta's text is not text")
            checked(delta, anthropic.BaseModel, p, "a delta is not an object")
        elif kind == "message_start":
            message = checked(checked(event, RawMessageStartEvent, p, "message_start").message, Message, p,
                              "message_start without a message")
            self.message_id = message.id if isinstance(message.id, str) else None
            self._start(message.usage)
            return self.input_usage()
        elif kind == "message_delta":
            event = checked(event, RawMessageDeltaEvent, p, "message_delta")
            self._delta(event.usage)
            stop = event.delta.stop_reason if isinstance(event.delta, anthropic.BaseModel) else None
            if stop is not None:
                self.stop_reason = checked(stop, str, p, "stop_reason is not text")
        elif kind == "message_stop":
            self.finished = True
        elif not isinstance(kind, str):
            raise malformed(p, "an event without a type")
        return None

    def _start(self, usage: object) -> None:
        """``message_start``: the input and cache counts (and an initial output count)."""
        p = self._provider
        u = checked(usage, MessageUsage, p, "message_start without its usage")
        self.input_tokens = token_count(u.input_tokens, p, "input_tokens", required=True)
        self.output_tokens = token_count(u.output_tokens, p, "output_tokens")
        self.cached = token_count(u.cache_read_input_tokens, p, "cache_read_input_tokens")
        self.written = token_count(u.cache_creation_input_tokens, p, "cache_creation_input_tokens")
        self.saw_usage = True

    def _delta(self, usage: object) -> None:
        """``message_delta``: cumulative counts; the input ones only when present."""
        p = self._provider
        u = checked(usage, MessageDeltaUsage, p, "message_delta without usage")
        self.output_tokens = token_count(u.output_tokens, p, "output_tokens", required=True)
        if u.input_tokens is not None:
            self.input_tokens = token_count(u.input_tokens, p, "input_tokens")
        if u.cache_read_input_tokens is not None:
            self.cached = token_count(u.cache_read_input_tokens, p, "cache_read_input_tokens")
        if u.cache_creation_input_tokens is not None:
            self.written = token_count(u.cache_creation_input_tokens, p, "cache_creation_input_tokens")
        self.saw_usage = True

    def input_usage(self) -> InputUsage | None:
        """The input side, once an event reported it (kept on an error that ends the stream)."""
        return InputUsage(self.input_tokens, self.cached, self.written) if self.saw_usage else None


def map_anthropic_error(exc: BaseException, *, provider: str, secrets: Sequence[str] = ()) -> ProviderError:
    """Every exception the ``anthropic`` SDK (or its transport) can raise → :class:`ProviderError`.

    Note: this SDK does not wrap transport errors raised while a stream is being read, so raw
    ``httpx2`` timeouts/transport errors are mapped here too.
    """
    if isinstance(exc, anthropic.APITimeoutError):
        return ProviderError(ErrorKind.TIMEOUT, "request timed out", provider=provider)
    if isinstance(exc, anthropic.APIConnectionError):
        cause = exc.__cause__
        detail = f"connection failed ({type(cause).__name__})" if cause is not None else "connection failed"
        return ProviderError(ErrorKind.CONNECTION, detail, provider=provider)
    if isinstance(exc, anthropic.APIResponseValidationError):
        return ProviderError(
            ErrorKind.SERVER,
            "response did not match the API schema",
            provider=provider,
            status_code=exc.status_code,
        )
    if isinstance(exc, anthropic.APIStatusError):
        message = sanitize_message(exc.api_message or "", secrets) or f"HTTP {exc.status_code}"
        if exc.status_code < 400:
            # an ``event: error`` inside a 200 stream: classify by the error type in its body
            kind = _STREAM_ERROR_KINDS.get(exc.type or "", ErrorKind.SERVER)
            return ProviderError(
                kind, f"error event in stream ({exc.type or 'unknown'}): {message}", provider=provider
            )
        return ProviderError(
            kind_for_status(exc.status_code),
            message,
            provider=provider,
            status_code=exc.status_code,
            retry_after=parse_retry_after(exc.response.headers),
        )
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError(ErrorKind.TIMEOUT, "request timed out", provider=provider)
    if isinstance(exc, httpx2.TransportError):
        return ProviderError(
            ErrorKind.CONNECTION, f"connection failed ({type(exc).__name__})", provider=provider
        )
    if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError | UnicodeDecodeError):
        return ProviderError(ErrorKind.SERVER, "malformed event in stream", provider=provider)
    if isinstance(exc, anthropic.APIError):
        return ProviderError(ErrorKind.SERVER, sanitize_message(exc.message, secrets), provider=provider)
    if isinstance(exc, anthropic.AnthropicError):
        return ProviderError(ErrorKind.BAD_REQUEST, type(exc).__name__, provider=provider)
    return ProviderError(ErrorKind.SERVER, f"unexpected {type(exc).__name__}", provider=provider)
