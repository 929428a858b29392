"""Fallback across providers, with a circuit breaker per provider.

``router.stream(messages, system=..., request_id=...)`` yields, in order:
``Started(provider, model, fallback_from, failures)`` once, then the answering provider's events:
its ``InputUsage`` if it reports one, ``TextDelta``\\ s, at most one ``Usage`` and one ``Done``. It raises:

* :class:`ProviderError` -- ``auth`` / ``bad_request`` before any text: surfaced immediately,
  **no fallback**. A bad key or a rejected request is a configuration or input problem that
  another provider would at best hide (silently changing model, cost and data processor) and at
  worst repeat; the user and the operator should see it.
* :class:`StreamInterrupted` -- any error after text was yielded; ``partial_text`` keeps what
  was produced. The run is ``interrupted``; no other provider is tried (that would repeat or
  contradict what the user already read).
* :class:`AllProvidersFailed` -- every provider failed with a fallback kind (rate_limited,
  server, timeout, connection) or was skipped by its open breaker.

Events from a provider are held back until its first text delta (or its successful end), so
``Started`` names the provider that actually answers and is emitted exactly once.

Breaker (per provider, thread-safe): ``breaker_failures`` consecutive fallback-kind failures →
open (skipped) for ``breaker_cooldown_s``; then half-open: exactly one trial request; success
closes it, failure re-opens it. auth/bad_request do not count (they are not provider health).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from core.providers.base import (
    ChatMessage,
    Done,
    InputUsage,
    Provider,
    ProviderError,
    ProviderEvent,
    ProviderTimeouts,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:
    from core.settings import Settings


@dataclass(frozen=True, slots=True)
class Started:
    """Emitted once, before the first delta: who answers; ``fallback_from`` names the providers
    passed over before it (failed, or skipped by an open breaker); ``failures`` their errors."""

    provider: str
    model: str
    fallback_from: tuple[str, ...] = ()
    failures: tuple[ProviderError, ...] = ()


RouterEvent = Started | TextDelta | InputUsage | Usage | Done


class StreamInterrupted(Exception):
    """The answering provider failed after text was shown; ``partial_text`` is what was shown."""

    def __init__(
        self,
        provider: str,
        model: str,
        error: ProviderError,
        partial_text: str,
        fallback_from: tuple[str, ...] = (),
    ) -> None:
        self.provider = provider
        self.model = model
        self.error = error
        self.partial_text = partial_text
        self.fallback_from = fallback_from
        super().__init__(f"{provider} interrupted after {len(partial_text)} characters: {error}")

    @property
    def error_code(self) -> str:
        return self.error.kind.value


class AllProvidersFailed(Exception):
    """No provider produced an answer. ``error_code``: the last error's kind, or ``circuit_open``."""

    def __init__(self, errors: Sequence[ProviderError], skipped: Sequence[str] = ()) -> None:
        self.errors = tuple(errors)
        self.skipped = tuple(skipped)
        parts = [str(e) for e in self.errors] + [f"{name}: circuit open" for name in self.skipped]
        super().__init__("all providers failed: " + "; ".join(parts) if parts else "no providers configured")

    @property
    def error_code(self) -> str:
        return self.errors[-1].kind.value if self.errors else "circuit_open"


class BreakerStateName(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class BreakerState:
    """A snapshot for the status page."""

    name: str
    model: str
    state: BreakerStateName
    consecutive_failures: int
    last_error_kind: str | None
    last_error_at: datetime | None
    cooldown_remaining_s: float


@dataclass(slots=True)
class _Breaker:
    failures: int = 0
    state: BreakerStateName = BreakerStateName.CLOSED
    opened_at: float = 0.0
    trial_in_flight: bool = False
    last_error_kind: str | None = None
    last_error_at: datetime | None = field(default=None)


class ProviderRouter:
    def __init__(
        self,
        providers: Sequence[Provider],
        breaker_failures: int = 3,
        breaker_cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not providers:
            raise ValueError("a router needs at least one provider")
        names = [p.name for p in providers]
        if len(set(names)) != len(names):
            raise ValueError("provider names must be unique")
        self.providers: tuple[Provider, ...] = tuple(providers)
        self._threshold = max(1, breaker_failures)
        self._cooldown = breaker_cooldown_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._breakers = {p.name: _Breaker() for p in providers}

    # breaker --------------------------------------------------------------------------------------
    def _acquire(self, name: str) -> bool:
        """May ``name`` be tried now? Takes the single half-open trial slot when due."""
        with self._lock:
            b = self._breakers[name]
            if b.state is BreakerStateName.OPEN:
                if self._clock() - b.opened_at < self._cooldown:
                    return False
                b.state = BreakerStateName.HALF_OPEN
                b.trial_in_flight = False
            if b.state is BreakerStateName.HALF_OPEN:
                if b.trial_in_flight:
                    return False
                b.trial_in_flight = True
            return True

    def _record_success(self, name: str) -> None:
        with self._lock:
            b = self._breakers[name]
            b.failures = 0
            b.state = BreakerStateName.CLOSED
            b.trial_in_flight = False

    def _record_failure(self, name: str, error: ProviderError) -> None:
        with self._lock:
            b = self._breakers[name]
            b.last_error_kind = error.kind.value
            b.last_error_at = self._wall_clock()
            if not error.kind.fallback_ok:
                # not a health signal; a half-open trial that hit one is simply released
                b.trial_in_flight = False
                return
            b.failures += 1
            if b.state is BreakerStateName.HALF_OPEN or b.failures >= self._threshold:
                b.state = BreakerStateName.OPEN
                b.opened_at = self._clock()
            b.trial_in_flight = False

    def _release(self, name: str) -> None:
        """The consumer abandoned the stream: no verdict, free the half-open slot."""
        with self._lock:
            self._breakers[name].trial_in_flight = False

    def breaker_states(self) -> list[BreakerState]:
        now = self._clock()
        with self._lock:
            out = []
            for p in self.providers:
                b = self._breakers[p.name]
                state = b.state
                remaining = 0.0
                if state is BreakerStateName.OPEN:
                    remaining = max(0.0, self._cooldown - (now - b.opened_at))
                    if remaining == 0.0:
                        state = BreakerStateName.HALF_OPEN  # the next request will be the trial
                out.append(
                    BreakerState(
                        p.name, p.model, state, b.failures, b.last_error_kind, b.last_error_at, remaining
                    )
                )
            return out

    def reset_breakers(self) -> None:
        with self._lock:
            self._breakers = {p.name: _Breaker() for p in self.providers}

    # streaming ------------------------------------------------------------------------------------
    def stream(
        self, messages: Sequence[ChatMessage], *, system: str, request_id: str
    ) -> Generator[RouterEvent, None, None]:
        failures: list[ProviderError] = []
        skipped: list[str] = []
        passed_over: list[str] = []  # failed or skipped (open breaker), in order
        for provider in self.providers:
            if not self._acquire(provider.name):
                skipped.append(provider.name)
                passed_over.append(provider.name)
                continue
            fallback_from = tuple(passed_over)
            held: list[ProviderEvent] = []
            started = False
            partial: list[str] = []
            verdict = ended = False
            events = provider.stream(messages, system=system, request_id=request_id)
            try:
                for event in events:
                    held.append(event)
                    if isinstance(event, TextDelta):
                        started = True
                        yield Started(provider.name, provider.model, fallback_from, tuple(failures))
                        yield from held
                        partial.append(event.text)
                        held.clear()
                        break
                # after the first text (once per chunk, so the least work): pass the events on
                for event in events:
                    if type(event) is TextDelta:
                        partial.append(event.text)
                    yield event
                ended = True
            except ProviderError as error:
                verdict = True
                self._record_failure(provider.name, error)
                if started:
                    raise StreamInterrupted(
                        provider.name, provider.model, error, "".join(partial), fallback_from
                    ) from None
                if not error.kind.fallback_ok:
                    raise
                failures.append(error)
                passed_over.append(provider.name)
                continue
            finally:
                close = getattr(events, "close", None)
                if close is not None:
                    close()  # closes the SDK stream / HTTP response if we stopped early
                if not verdict and not ended:
                    self._release(provider.name)  # abandoned (GeneratorExit) or a bug: no verdict
            # the provider finished without error
            self._record_success(provider.name)
            if not started:  # an answer without any text (e.g. empty completion)
                yield Started(provider.name, provider.model, fallback_from, tuple(failures))
                yield from held
            return
        raise AllProvidersFailed(failures, skipped)


# --- building from settings ------------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache: dict[int, tuple[Settings, ProviderRouter]] = {}


class ProviderConfigError(ValueError):
    """A provider is listed but cannot be built (e.g. no key and no base URL)."""


def build_providers(settings: Settings) -> list[Provider]:
    from core.providers.anthropic_provider import AnthropicProvider
    from core.providers.demo import DemoProvider
    from core.providers.openai_provider import OpenAIProvider

    timeouts = ProviderTimeouts(
        connect_s=settings.provider_connect_timeout_s,
        first_token_s=settings.provider_first_token_timeout_s,
        total_s=settings.provider_total_timeout_s,
    )
    out: list[Provider] = []
    for name in settings.provider_order:
        if name == "openai":
            key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
            if not key and not settings.openai_base_url:
                raise ProviderConfigError(
                    "provider openai needs ADVISOR_OPENAI_API_KEY or ADVISOR_OPENAI_BASE_URL"
                )
            out.append(
                OpenAIProvider(
                    model=settings.openai_model,
                    api_key=key,
                    base_url=settings.openai_base_url,
                    timeouts=timeouts,
                    max_retries=settings.provider_max_retries,
                )
            )
        elif name == "anthropic":
            key = settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None
            if not key and not settings.anthropic_base_url:
                raise ProviderConfigError(
                    "provider anthropic needs ADVISOR_ANTHROPIC_API_KEY or ADVISOR_ANTHROPIC_BASE_URL"
                )
            out.append(
                AnthropicProvider(
                    model=settings.anthropic_model,
                    api_key=key,
                    base_url=settings.anthropic_base_url,
                    max_tokens=settings.anthropic_max_tokens,
                    prompt_cache=settings.anthropic_prompt_cache,
                    timeouts=timeouts,
                    max_retries=settings.provider_max_retries,
                )
            )
        elif name == "demo":
            out.append(DemoProvider(delay_ms=settings.demo_delay_ms))
        else:  # pragma: no cover - Settings validates names
            raise ProviderConfigError(f"unknown provider {name!r}")
    return out


def build_router(settings: Settings) -> ProviderRouter:
    """The router for these settings, built once per settings object (clients are pooled and reused)."""
    with _cache_lock:
        hit = _cache.get(id(settings))
        if hit is not None and hit[0] is settings:
            return hit[1]
        router = ProviderRouter(
            build_providers(settings),
            breaker_failures=settings.breaker_failures,
            breaker_cooldown_s=settings.breaker_cooldown_s,
        )
        _cache[id(settings)] = (settings, router)
        return router


def reset_router_cache() -> None:
    """For tests: forget built routers (closing their HTTP clients)."""
    with _cache_lock:
        routers = [r for _, r in _cache.values()]
        _cache.clear()
    for router in routers:
        for p in router.providers:
            close = getattr(p, "close", None)
            if callable(close):
                close()
