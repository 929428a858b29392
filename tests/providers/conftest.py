"""Fixtures: one loopback stub per session (state reset per test) and providers pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core.providers.anthropic_provider import AnthropicProvider
from core.providers.base import ChatMessage, ProviderTimeouts
from core.providers.openai_provider import OpenAIProvider
from core.providers.router import reset_router_cache
from tests.stubs.provider_server import ProviderStubServer

# obviously fake keys: these only ever travel to 127.0.0.1
OPENAI_TEST_KEY = "sk-test-openai-0000000000000000"
ANTHROPIC_TEST_KEY = "sk-ant-test-0000000000000000"
SYSTEM = "# Architecture review\nYou are a pragmatic engineering advisor."
QUESTION = [ChatMessage("user", "Should we split the monolith this quarter?")]
FAST = ProviderTimeouts(connect_s=2.0, first_token_s=1.0, total_s=10.0)


@pytest.fixture(scope="session")
def stub_server() -> Iterator[ProviderStubServer]:
    with ProviderStubServer() as server:
        yield server


@pytest.fixture
def stub(stub_server: ProviderStubServer) -> Iterator[ProviderStubServer]:
    stub_server.reset()
    yield stub_server
    stub_server.reset()
    reset_router_cache()


ProviderFactory = Callable[..., OpenAIProvider | AnthropicProvider]


@pytest.fixture
def make_provider(stub: ProviderStubServer) -> ProviderFactory:
    """make_provider("openai" | "anthropic", **overrides) → a real-SDK provider aimed at the stub."""

    def make(api: str, **kw: Any) -> OpenAIProvider | AnthropicProvider:
        kw.setdefault("timeouts", FAST)
        kw.setdefault("max_retries", 0)
        if api == "openai":
            kw.setdefault("model", "gpt-4o-mini")
            kw.setdefault("api_key", OPENAI_TEST_KEY)
            return OpenAIProvider(base_url=stub.openai_base_url, **kw)
        kw.setdefault("model", "claude-sonnet-4-5")
        kw.setdefault("api_key", ANTHROPIC_TEST_KEY)
        return AnthropicProvider(base_url=stub.anthropic_base_url, **kw)

    return make
