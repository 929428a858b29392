"""OpenAI Chat Completions (and any OpenAI-compatible server: Ollama, vLLM, LiteLLM, ...)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import httpx2
import openai
import pydantic
from openai import Stream
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from core.providers.base import (
    ChatMessage,
    Deadline,
    Done,
    ErrorKind,
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

# The SDK's own streaming class, yielding each chunk as the JSON the server sent (see ``stream``).
_RAW_STREAM = Stream[object]


class OpenAIProvider(SDKProvider):
    """Streams Chat Completions with ``stream_options.include_usage``; one pooled client per instance."""

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None = None,
        base_url: str | None = None,
        timeouts: ProviderTimeouts | None = None,
        max_retries: int = 0,
        name: str = "openai",
    ) -> None:
        super().__init__(name=name, model=model, api_key=api_key, base_url=base_url, timeouts=timeouts)
        self._client = openai.OpenAI(
            api_key=self._api_key,
            base_url=base_url,
            timeout=self._timeouts.httpx_timeout(),
            max_retries=max_retries,
        )

    def stream(
        self, messages: Sequence[ChatMessage], *, system: str, request_id: str
    ) -> Iterator[ProviderEvent]:
        payload: list[ChatCompletionMessageParam] = []
        if system:
            payload.append({"role": "system", "content": system})
        for m in messages:
            if m.role == "user":
                payload.append({"role": "user", "content": m.content})
            else:
                payload.append({"role": "assistant", "content": m.content})

        deadline = Deadline(self._timeouts, self.name)
        got_text = False
        usage: object = None
        stop_reason: str | None = None
        chunk_id: str | None = None
        try:
            # The body goes out through the SDK's documented ``client.post`` (same client, auth, retries,
            # timeouts, errors and SSE decoding as ``chat.completions.create``), already in wire form:
            # ``create`` first walks every message through its TypedDict transform, which returns
            # plain-string messages unchanged and costs about two thirds of the SDK's request
            # preparation (0.65 of 1.0 ms per call on the benchmark machine), in front of the first
            # token. tests/providers pin that the request is the one ``create`` sends.
            # The chunks come back as the JSON the server sent (``Stream[object]``: the SDK's own SSE
            # decoding and in-stream error events, without building a ``ChatCompletionChunk`` model per
            # chunk, which costs ~25x the JSON decoding: 0.14 ms a chunk in a hot loop on the benchmark
            # machine, where a 200-chunk answer takes 62 ms with the models and 13 ms without). The few
            # fields read here are checked as they are read.
            with self._client.post(
                "/chat/completions",
                body={
                    "model": self.model,  # (the keys in create's order)
                    "stream": True,
                    "messages": payload,
                    "stream_options": {"include_usage": True},
                },
                options={"headers": {"X-Client-Request-Id": request_id}, "security": {"bearer_auth": True}},
                cast_to=ChatCompletion,
                stream=True,
                stream_cls=_RAW_STREAM,
            ) as stream:
                header_id = stream.response.headers.get("x-request-id")
                for chunk in stream:
                    deadline.check()
                    if type(chunk) is not dict:
                        raise malformed(self.name, "a chunk is not an object")
                    if chunk_id is None:
                        chunk_id = str_or_none(chunk.get("id"))
                    if chunk.get("usage") is not None:
                        usage = chunk["usage"]
                    choices = chunk.get("choices")
                    if not choices:
                        continue
                    if type(choices) is not list:
                        raise malformed(self.name, "choices is not a list")
                    for choice in choices:
                        if type(choice) is not dict:
                            raise malformed(self.name, "a choice is not an object")
                        if choice.get("index", 0) != 0:
                            continue
                        delta = choice.get("delta")
                        text = delta_text(delta, "content", self.name) if delta else None
                        if text:
                            if not got_text:
                                got_text = deadline.got_text = True
                            yield TextDelta(text)
                        finish = choice.get("finish_reason")
                        if finish is not None:
                            if type(finish) is not str:
                                raise malformed(self.name, "finish_reason is not text")
                            stop_reason = finish
        except ProviderError:
            raise
        except Exception as exc:
            raise map_openai_error(exc, provider=self.name, secrets=self._secrets) from None

        if stop_reason is None:
            # The body ended cleanly but without a finish_reason: a proxy or server cut it short.
            raise ProviderError(ErrorKind.CONNECTION, "stream ended before completion", provider=self.name)
        if usage is not None:
            yield usage_from_openai(usage, provider=self.name)
        yield Done(stop_reason=stop_reason, provider_request_id=header_id or chunk_id)


def usage_from_openai(usage: object, *, provider: str = "openai") -> Usage:
    """The ``usage`` object of a Chat Completions response or final chunk, as sent (JSON).

    ``prompt_tokens`` includes cached tokens (and cache writes); Usage.input_tokens excludes them.
    A field of the wrong type is a malformed event (``ProviderError``, kind server), never a guess.
    """
    if type(usage) is not dict:
        raise malformed(provider, "usage is not an object")
    details = usage.get("prompt_tokens_details")
    if details is not None and type(details) is not dict:
        raise malformed(provider, "usage prompt_tokens_details is not an object")
    cached = token_count(details.get("cached_tokens"), provider, "cached_tokens") if details else 0
    written = token_count(details.get("cache_write_tokens"), provider, "cache_write_tokens") if details else 0
    prompt = token_count(usage.get("prompt_tokens"), provider, "prompt_tokens", required=True)
    return Usage(
        input_tokens=max(0, prompt - cached - written),
        output_tokens=token_count(usage.get("completion_tokens"), provider, "completion_tokens", required=True),
        cached_input_tokens=cached,
        cache_write_tokens=written,
    )


def map_openai_error(exc: BaseException, *, provider: str, secrets: Sequence[str] = ()) -> ProviderError:
    """Every exception the ``openai`` SDK (or its transport) can raise → :class:`ProviderError`."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(ErrorKind.TIMEOUT, "request timed out", provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(ErrorKind.CONNECTION, _connection_detail(exc), provider=provider)
    if isinstance(exc, openai.APIResponseValidationError):
        return ProviderError(
            ErrorKind.SERVER,
            "response did not match the API schema",
            provider=provider,
            status_code=exc.status_code,
        )
    if isinstance(exc, openai.APIStatusError):
        kind = kind_for_status(exc.status_code)
        return ProviderError(
            kind,
            _status_detail(exc.body, exc.status_code, secrets),
            provider=provider,
            status_code=exc.status_code,
            retry_after=parse_retry_after(exc.response.headers),
        )
    if isinstance(exc, openai.APIError):
        # an error object sent inside an otherwise successful stream
        body = exc.body if isinstance(exc.body, dict) else {}
        label = f"{body.get('type') or ''} {body.get('code') or ''}".lower()
        kind = ErrorKind.RATE_LIMITED if "rate_limit" in label else ErrorKind.SERVER
        return ProviderError(
            kind, "error event in stream: " + sanitize_message(exc.message, secrets), provider=provider
        )
    if isinstance(exc, httpx2.TimeoutException):
        return ProviderError(ErrorKind.TIMEOUT, "request timed out", provider=provider)
    if isinstance(exc, httpx2.TransportError):
        return ProviderError(ErrorKind.CONNECTION, type(exc).__name__, provider=provider)
    if isinstance(exc, json.JSONDecodeError | pydantic.ValidationError | UnicodeDecodeError):
        return ProviderError(ErrorKind.SERVER, "malformed event in stream", provider=provider)
    if isinstance(exc, openai.OpenAIError):
        return ProviderError(ErrorKind.BAD_REQUEST, type(exc).__name__, provider=provider)
    return ProviderError(ErrorKind.SERVER, f"unexpected {type(exc).__name__}", provider=provider)


def _connection_detail(exc: BaseException) -> str:
    cause = exc.__cause__
    return f"connection failed ({type(cause).__name__})" if cause is not None else "connection failed"


def _status_detail(body: object, status: int, secrets: Sequence[str]) -> str:
    message = ""
    if isinstance(body, dict):
        raw = body.get("message")
        if raw is None and isinstance(body.get("error"), dict):
            raw = body["error"].get("message")
        message = raw if isinstance(raw, str) else ""
    elif isinstance(body, str):
        message = body
    return sanitize_message(message, secrets) if message else f"HTTP {status}"
