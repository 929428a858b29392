"""Anthropic Messages, streamed (the SSE events as sent: no accumulation helper, no model per event)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import anthropic
import httpx2
import pydantic
from anthropic import Stream
from anthropic.types import CacheControlEphemeralParam, Message, MessageParam

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
    delta_text,
    kind_for_status,
    malformed,
    parse_retry_after,
    sanitize_message,
    str_or_none,
    token_count,
)

# The SDK's own streaming class, yielding each event as the JSON the server sent (see ``stream``).
_RAW_STREAM = Stream[object]

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
    """Usage: input/cache counts from ``message_start``, output (cumulative) from ``message_delta``."""

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
        # Automatic prompt caching: the API puts the cache breakpoint on the last cacheable block and
        # moves it as the conversation grows, so a turn re-reads the system prompt and the history it
        # shares with the previous turn at the cache-read price. The 5-minute cache only: pricing.toml
        # prices its writes (a 1-hour write costs more). Too short a prompt is simply not cached.
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
        got_text = False
        input_tokens = output_tokens = cached = written = 0
        saw_usage = False
        stop_reason: str | None = None
        message_id: str | None = None
        finished = False
        body: dict[str, object] = {"max_tokens": self._max_tokens, "messages": payload, "model": self.model}
        if self._cache_control is not anthropic.omit:
            body["cache_control"] = self._cache_control
        body["stream"] = True
        if system:
            body["system"] = system
        try:
            # The SDK's documented ``client.post`` to the endpoint ``messages.create`` calls, with the body
            # ``create`` sends (its keys in create's order; tests/providers pin the request byte for byte):
            # same client, auth, retries, timeouts, errors and SSE decoding (``ping`` skipped, ``error``
            # events raised), with each event as the JSON sent (``Stream[object]``) instead of a model
            # per event. The few fields read are checked as they are read.
            with self._client.post(
                "/v1/messages",
                body=body,
                options={"headers": {"X-Client-Request-Id": request_id}},
                cast_to=Message,
                stream=True,
                stream_cls=_RAW_STREAM,
            ) as stream:
                header_id = stream.response.headers.get("request-id")
                for event in stream:
                    deadline.check()
                    if type(event) is not dict:
                        raise malformed(self.name, "an event is not an object")
                    kind = event.get("type")
                    if kind == "content_block_delta":
                        delta = event.get("delta")
                        text = delta_text(delta, "text", self.name)  # only a text_delta has "text"
                        if text:
                            if not got_text:
                                got_text = deadline.got_text = True
                            yield TextDelta(text)
                    elif kind == "message_start":
                        message = event.get("message")
                        if type(message) is not dict or type(message.get("usage")) is not dict:
                            raise malformed(self.name, "message_start without a message and its usage")
                        message_id = str_or_none(message.get("id"))
                        u = message["usage"]
                        input_tokens = token_count(u.get("input_tokens"), self.name, "input_tokens", required=True)
                        output_tokens = token_count(u.get("output_tokens"), self.name, "output_tokens")
                        cached = token_count(u.get("cache_read_input_tokens"), self.name, "cache_read_input_tokens")
                        written = token_count(
                            u.get("cache_creation_input_tokens"), self.name, "cache_creation_input_tokens"
                        )
                        saw_usage = True
                    elif kind == "message_delta":
                        d = event.get("usage")  # cumulative counts; the input ones only when present
                        if type(d) is not dict:
                            raise malformed(self.name, "message_delta without usage")
                        output_tokens = token_count(d.get("output_tokens"), self.name, "output_tokens",
                                                    required=True)
                        if d.get("input_tokens") is not None:
                            input_tokens = token_count(d["input_tokens"], self.name, "input_tokens")
                        if d.get("cache_read_input_tokens") is not None:
                            cached = token_count(d["cache_read_input_tokens"], self.name, "cache_read_input_tokens")
                        if d.get("cache_creation_input_tokens") is not None:
                            written = token_count(
                                d["cache_creation_input_tokens"], self.name, "cache_creation_input_tokens"
                            )
                        saw_usage = True
                        delta = event.get("delta")
                        stop = delta.get("stop_reason") if type(delta) is dict else None
                        if stop is not None:
                            if type(stop) is not str:
                                raise malformed(self.name, "stop_reason is not text")
                            stop_reason = stop
                    elif kind == "message_stop":
                        finished = True
        except Exception as exc:
            error = exc if isinstance(exc, ProviderError) else map_anthropic_error(
                exc, provider=self.name, secrets=self._secrets
            )
            if saw_usage:  # message_start came: the input side is known even though the stream failed
                error.input_usage = InputUsage(input_tokens, cached, written)
            raise error from None

        if not finished:
            raise ProviderError(
                ErrorKind.CONNECTION, "stream ended before message_stop", provider=self.name,
                input_usage=InputUsage(input_tokens, cached, written) if saw_usage else None,
            )
        if saw_usage:
            yield Usage(
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cached_input_tokens=cached,
                cache_write_tokens=written,
            )
        yield Done(stop_reason=stop_reason, provider_request_id=header_id or message_id)


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
