"""build_router(settings): provider order, keys/base URLs, caching."""

from __future__ import annotations

import pytest

from core.providers.anthropic_provider import AnthropicProvider
from core.providers.demo import DemoProvider
from core.providers.openai_provider import OpenAIProvider
from core.providers.router import ProviderConfigError, build_router, reset_router_cache
from core.settings import Settings
from tests.providers.conftest import ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY, QUESTION, SYSTEM
from tests.providers.helpers import collect
from tests.stubs.provider_server import Fault, ProviderStubServer


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch):
    for var in ("PROVIDERS", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL",
                "ANTHROPIC_PROMPT_CACHE"):
        monkeypatch.delenv(f"ADVISOR_{var}", raising=False)
    yield
    reset_router_cache()


def _settings(**kw) -> Settings:
    return Settings(_env_file=None, **kw)


def test_nothing_configured_means_demo():
    router = build_router(_settings(demo_delay_ms=0))
    assert [type(p) for p in router.providers] == [DemoProvider]


def test_order_keys_and_models_come_from_settings(stub: ProviderStubServer):
    settings = _settings(
        providers="anthropic,openai",
        openai_api_key=OPENAI_TEST_KEY,
        openai_base_url=stub.openai_base_url,
        openai_model="gpt-4.1-mini",
        anthropic_api_key=ANTHROPIC_TEST_KEY,
        anthropic_base_url=stub.anthropic_base_url,
        anthropic_model="claude-haiku-4-5",
        breaker_failures=4,
    )
    router = build_router(settings)
    assert [(type(p), p.model) for p in router.providers] == [
        (AnthropicProvider, "claude-haiku-4-5"),
        (OpenAIProvider, "gpt-4.1-mini"),
    ]
    assert build_router(settings) is router  # built once per settings object: pooled clients reused

    stub.set_fault("anthropic", Fault("overloaded"))
    got = collect(router.stream(QUESTION, system=SYSTEM, request_id="r"))
    assert (got.started[0].provider, got.started[0].fallback_from) == ("openai", ("anthropic",))
    assert stub.requests("openai")[0].body["model"] == "gpt-4.1-mini"
    assert stub.requests("anthropic")[0].body["model"] == "claude-haiku-4-5"

    reset_router_cache()
    assert build_router(settings) is not router


@pytest.mark.parametrize("env_value, expected", [(None, {"type": "ephemeral", "ttl": "5m"}), ("false", None)])
def test_anthropic_prompt_cache_setting(stub: ProviderStubServer, monkeypatch: pytest.MonkeyPatch,
                                        env_value: str | None, expected: dict[str, str] | None):
    if env_value is not None:
        monkeypatch.setenv("ADVISOR_ANTHROPIC_PROMPT_CACHE", env_value)
    router = build_router(_settings(anthropic_base_url=stub.anthropic_base_url))
    collect(router.stream(QUESTION, system=SYSTEM, request_id="r"))
    [req] = stub.requests("anthropic")
    assert req.body.get("cache_control") == expected


def test_timeouts_come_from_settings(stub: ProviderStubServer):
    settings = _settings(openai_base_url=stub.openai_base_url, provider_first_token_timeout_s=0.3)
    router = build_router(settings)
    assert [p.name for p in router.providers] == ["openai"]  # base URL alone configures it (no key needed)
    stub.set_fault("openai", Fault("slow_first_byte", delay_s=1.0))
    with pytest.raises(Exception) as info:
        collect(router.stream(QUESTION, system=SYSTEM, request_id="r"))
    assert getattr(info.value, "error_code", None) == "timeout"


def test_listed_provider_without_key_or_url_is_a_config_error():
    with pytest.raises(ProviderConfigError, match="ADVISOR_ANTHROPIC_API_KEY"):
        build_router(_settings(providers="anthropic"))


def test_provider_repr_hides_the_key(stub: ProviderStubServer):
    router = build_router(_settings(openai_api_key=OPENAI_TEST_KEY, openai_base_url=stub.openai_base_url))
    assert OPENAI_TEST_KEY not in repr(router.providers[0])
