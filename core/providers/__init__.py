"""LLM providers behind one router: see ``base`` (contract), ``router`` (fallback + breaker)."""

from core.providers.base import (
    ChatMessage,
    Done,
    ErrorKind,
    Provider,
    ProviderError,
    ProviderEvent,
    ProviderTimeouts,
    TextDelta,
    Usage,
)
from core.providers.router import (
    AllProvidersFailed,
    BreakerState,
    ProviderConfigError,
    ProviderRouter,
    RouterEvent,
    Started,
    StreamInterrupted,
    build_router,
    reset_router_cache,
)

__all__ = [
    "AllProvidersFailed",
    "BreakerState",
    "ChatMessage",
    "Done",
    "ErrorKind",
    "Provider",
    "ProviderConfigError",
    "ProviderError",
    "ProviderEvent",
    "ProviderRouter",
    "ProviderTimeouts",
    "RouterEvent",
    "Started",
    "StreamInterrupted",
    "TextDelta",
    "Usage",
    "build_router",
    "reset_router_cache",
]
