"""OpenAI Chat Completions (and any OpenAI-compatible server: Ollama, vLLM, LiteLLM, ...)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import httpx2
import openai
import pydantic
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta
from openai.types.completion_usage import PromptTokensDetails

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
    checked,
    kind_for_status,
    parse_retry_after,
    sanitize_message,
    token_count,
)


class OpenAIProvider(SDKProvider):
    """Streams ``client.chat.completions.create(stream=True, stream_options={"include_usage": True})``;
    one pooled client per instance.

    **When the answer is complete.** The SDK's ``Stream`` stops at the ``data: [DONE]`` terminator,
    and stops the same way, without a sign, when the body ends cleanly before it; so completeness is
    read from the typed chunks. Before ``[DONE]`` the server sends a chunk whose choice carries a
    ``finish_reason`` and then, when it streams usage, one chunk holding the usage (every earlier
    chunk carries ``"usage": null``). The answer is complete when a ``finish_reason`` arrived and,
    if any chunk carried a ``usage`` key, the usage arrived too. Otherwise the stream was cut short:
    a ``connection`` error, so the run is ``interrupted``, never ``ok``. A server that ignores
    ``include_usage`` (no ``usage`` key at all) is complete at its ``finish_reason``, without usage.
    A body that ends after the usage chunk but before ``[DONE]`` has lost nothing and is complete.

    Usage is read from the chunk that carries it (see :func:`usage_from_openai`).
    """

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
        reader = _ChunkReader(self.name)
        try:
            with self._client.chat.completions.create(
                model=self.model,
                messages=payload,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"X-Client-Request-Id": request_id},
            ) as stream:
                header_id = stream.response.headers.get("x-request-id")
                for chunk in stream:
                    deadline.check()
                    text = reader.read(chunk)
                    if text:
                        deadline.got_text = True
                        yield TextDelta(text)
        except ProviderError:
            raise
        except Exception as exc:
            raise map_openai_error(exc, provider=self.name, secrets=self._secrets) from None

        if not reader.complete:
            raise ProviderError(ErrorKind.CONNECTION, "stream ended before completion", provider=self.name)
        if reader.usage is not None:
            yield reader.usage
        yield Done(stop_reason=reader.stop_reason, provider_request_id=header_id or reader.chunk_id)


class _ChunkReader:
    """Reads the typed chunks of one streamed completion: the first choice's text and finish
    reason, the usage, the completion id, and whether the server streams usage at all."""

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self.usage: Usage | None = None
        self.streams_usage = False
        self.stop_reason: str | None = None
        self.chunk_id: str | None = None

    @property
    def complete(self) -> bool:
        """A finish_reason came and, if the server streams usage, the usage chunk after it."""
        return self.stop_reason is not None and (self.usage is not None or not self.streams_usage)

    def read(self, chunk: object) -> str | None:
        """The text ``chunk`` carries for the first choice, if any; its other contents are recorded."""
        p = self._provider
        chunk = checked(chunk, ChatCompletionChunk, p, "a chunk is not an object")
        if self.chunk_id is None and isinstance(chunk.id, str):
            self.chunk_id = chunk.id
        if "usage" in chunk.model_fields_set:  # present (null until the last chunk) when usage is streamed
            self.streams_usage = True
            if chunk.usage is not None:
                self.usage = usage_from_openai(chunk.usage, provider=p)
        text: str | None = None
        for choice in checked(chunk.choices or [], list, p, "choices is not a list"):
            choice = checked(choice, Choice, p, "a choice is not an object")
            if choice.index:  # only one choice is asked for
                continue
            if choice.delta is not None:
                content = checked(choice.delta, ChoiceDelta, p, "a delta is not an object").content
                if content:
                    text = checked(content, str, p, "a delta's content is not text")
            if choice.finish_reason is not None:
                self.stop_reason = checked(choice.finish_reason, str, p, "finish_reason is not text")
        return text


def usage_from_openai(usage: object, *, provider: str = "openai") -> Usage:
    """The ``usage`` of a Chat Completions response or final chunk, normalised.

    ``prompt_tokens`` includes cached tokens (and cache writes); Usage.input_tokens excludes them.
    A field of the wrong type is a malformed event (``ProviderError``, kind server), never a guess.
    """
    usage = checked(usage, CompletionUsage, provider, "usage is not an object")
    details = usage.prompt_tokens_details
    cached = written = 0
    if details is not None:
        details = checked(details, PromptTokensDetails, provider, "usage prompt_tokens_details is not an object")
        cached = token_count(details.cached_tokens, provider, "cached_tokens")
        written = token_count(details.cache_write_tokens, provider, "cache_write_tokens")
    prompt = token_count(usage.prompt_tokens, provider, "prompt_tokens", required=True)
    return Usage(
        input_tokens=max(0, prompt - cached - written),
        output_tokens=token_count(usage.completion_tokens, provider, "completion_tokens", required=True),
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
