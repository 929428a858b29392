"""Fixtures for chat-turn tests: a migrated database (PostgreSQL; SQLite too where a test asks with
``BOTH_DATABASES``), the loopback stub as two providers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from core import rate_limits
from core.conversations import create_conversation
from core.providers.router import ProviderRouter, build_router, reset_router_cache
from core.settings import Settings, get_settings
from models.schemas import ConversationIn
from tests.factories import make_user
from tests.stubs.provider_server import ProviderStubServer

OPENAI_KEY = "sk-test-openai-chat-000000000000"
ANTHROPIC_KEY = "sk-ant-test-chat-0000000000000"


@dataclass
class ChatEnv:
    stub: ProviderStubServer
    settings: Settings
    router: ProviderRouter
    user_id: uuid.UUID
    conversation_id: uuid.UUID

    def new_conversation(self, user_id: uuid.UUID | None = None, agent: str = "general") -> uuid.UUID:
        return create_conversation(user_id=user_id or self.user_id, data=ConversationIn(agent=agent)).id


@pytest.fixture(scope="session")
def stub_server() -> Iterator[ProviderStubServer]:
    with ProviderStubServer() as server:
        yield server


@pytest.fixture
def chat_db_url(request: pytest.FixtureRequest) -> str:
    """PostgreSQL unless a test parametrizes it (``indirect``) with "sqlite" as well."""
    kind = getattr(request, "param", "postgresql")
    return request.getfixturevalue("sqlite_url" if kind == "sqlite" else "pg_url")  # type: ignore[no-any-return]


BOTH_DATABASES = pytest.mark.parametrize("chat_db_url", ["postgresql", "sqlite"], indirect=True)


@pytest.fixture
def chat_env(chat_db_url: str, stub_server: ProviderStubServer, set_env) -> Iterator[ChatEnv]:
    stub_server.reset()
    set_env(
        PROVIDERS="openai,anthropic",
        OPENAI_API_KEY=OPENAI_KEY,
        OPENAI_BASE_URL=stub_server.openai_base_url,
        OPENAI_MODEL="gpt-4o-mini",
        ANTHROPIC_API_KEY=ANTHROPIC_KEY,
        ANTHROPIC_BASE_URL=stub_server.anthropic_base_url,
        ANTHROPIC_MODEL="claude-sonnet-4-5",
        PROVIDER_FIRST_TOKEN_TIMEOUT_S="3.0",
        PROVIDER_TOTAL_TIMEOUT_S="10",
        CHAT_TURNS_PER_MINUTE="10000",
        BREAKER_FAILURES="100",
    )
    reset_router_cache()
    rate_limits.reset_limiter_cache()
    settings = get_settings()
    user_id = make_user()
    env = ChatEnv(stub=stub_server, settings=settings, router=build_router(settings), user_id=user_id,
                  conversation_id=uuid.uuid4())
    env.conversation_id = env.new_conversation()
    yield env
    stub_server.reset()
    reset_router_cache()
    rate_limits.reset_limiter_cache()
