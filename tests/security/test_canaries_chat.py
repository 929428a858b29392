"""C9 over real chat turns: no secret reaches the logs or Sentry, whatever path a turn takes.

Canary secrets sit in the settings (the OpenAI / Anthropic keys, the Sentry DSN, the deletion
salt), inside the user's chat message (secret-shaped: an Anthropic key and ``password=…``), inside
the providers' error bodies (the loopback stub echoes them, as real providers echo a bad key), and
inside an exception raised mid-turn. Turns that succeed, fall back, fail on every provider, are
refused (401), are cut mid-stream and crash are run through ``run_turn`` against the stub, with
logging set up as the app does it and Sentry initialised with a capturing transport. Every log
record (a handler on the root logger) and every Sentry envelope is searched: no canary, and the
turn's request id is there.
"""

from __future__ import annotations

import io
import logging
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from core import chat as core_chat
from core.chat import TurnResult, run_turn
from core.error_reports import init_sentry
from core.log_setup import setup_logging
from core.providers.router import build_router, reset_router_cache
from core.request_context import current_request_id, request_context
from core.settings import get_settings
from tests.chat_fixtures import ChatEnv, chat_env, stub_server  # noqa: F401
from tests.security.conftest import Canaries
from tests.stubs.provider_server import Fault

pytestmark = pytest.mark.usefixtures("clean_observability")


class CapturingTransport(Transport):
    """Keeps every envelope instead of sending it anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[bytes] = []
        self.events: list[dict[str, Any]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope.serialize())
        for item in envelope.items:
            payload = item.payload.json
            if item.headers.get("type") == "event" and isinstance(payload, dict):
                self.events.append(payload)

    @property
    def text(self) -> str:
        return b"\n".join(self.envelopes).decode("utf-8", "replace")


class RecordCapture(logging.Handler):
    """Every record that reaches the root logger, with all of its text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        parts = [record.getMessage(), self.format(record), record.exc_text or "", record.stack_info or ""]
        # every attribute as text, except the live exception object: handlers write exc_text (set
        # and redacted by the app's filter), and Sentry gets exceptions through before_send
        parts += [str(v) for k, v in record.__dict__.items() if k != "exc_info"]
        self.texts.append("\n".join(parts))


@dataclass
class Capture:
    stream: io.StringIO
    records: RecordCapture
    transport: CapturingTransport
    secrets: list[str] = field(default_factory=list)

    def everything(self) -> str:
        sentry_sdk.flush()
        return "\n".join([self.stream.getvalue(), *self.records.texts, self.transport.text])

    def assert_clean(self) -> None:
        text = self.everything()
        for secret in self.secrets:
            assert secret not in text, secret


@pytest.fixture
def canary_chat(
    chat_env: ChatEnv,  # noqa: F811
    canaries: Canaries,
    set_env,
) -> Iterator[tuple[ChatEnv, Capture]]:
    """chat_env with canary keys, the app's logging (DEBUG) and Sentry through a capturing transport."""
    set_env(
        OPENAI_API_KEY=canaries.openai_key,
        ANTHROPIC_API_KEY=canaries.anthropic_key,
        SENTRY_DSN=f"http://{canaries.sentry_key}@127.0.0.1:9/1",  # never contacted: transport replaced
        DELETION_SALT=canaries.salt,
        LOG_LEVEL="DEBUG",
    )
    reset_router_cache()
    settings = get_settings()
    chat_env.settings, chat_env.router = settings, build_router(settings)
    stream = io.StringIO()
    setup_logging(settings, stream=stream)
    records = RecordCapture()
    root = logging.getLogger()
    root.addHandler(records)  # after setup_logging: sees records as the app's handlers left them
    transport = CapturingTransport()
    assert init_sentry(settings, transport=transport)
    capture = Capture(stream, records, transport, [
        canaries.openai_key, canaries.anthropic_key, canaries.sentry_key, canaries.salt,
        canaries.body_password, canaries.bearer,
    ])  # fmt: skip
    try:
        yield chat_env, capture
    finally:
        root.removeHandler(records)
        reset_router_cache()


def message_with_secrets(c: Canaries, marker: str) -> tuple[str, str]:
    """A chat message carrying secret-shaped text; returns (message, the leaked key in it)."""
    leaked_key = f"sk-ant-api03-LEAK{secrets.token_urlsafe(24)}"
    text = (
        f"[{marker}] our staging config is\nANTHROPIC_API_KEY={leaked_key}\npassword={c.body_password}\n"
        f"Authorization: Bearer {c.bearer}\nwhy does the deploy fail?"
    )
    return text, leaked_key


def turn(env: ChatEnv, text: str) -> TurnResult:
    """One turn the way the chat page runs it: inside its own request context."""
    with request_context(page="chat") as rid:
        t = run_turn(
            user_id=env.user_id,
            conversation_id=env.conversation_id,
            text=text,
            settings=env.settings,
            router=env.router,
            request_id=rid,
        )
        for _ in t:
            pass
        t.close()  # as the page does (the run's last write, and what it logs, are done)
    assert t.result.request_id == rid
    return t.result


def rids_in_logs(capture: Capture) -> set[str]:
    return {str(getattr(r, "request_id", "")) for r in capture.records.records}


def test_successful_turn_logs_no_secret(canary_chat: tuple[ChatEnv, Capture], canaries: Canaries) -> None:
    env, capture = canary_chat
    marker = uuid.uuid4().hex
    text, leaked = message_with_secrets(canaries, marker)
    result = turn(env, text)
    assert result.status == "ok" and result.output
    # the keys really went to the provider (so they were in play during the turn)
    (sent,) = env.stub.requests("openai")
    assert any(canaries.openai_key in v for v in sent.headers.values())
    assert leaked in str(sent.body)  # the message reached the LLM (that is the product)…
    capture.secrets.append(leaked)
    capture.assert_clean()  # …and nothing else
    assert marker not in capture.everything()  # chat content is never logged at all


def test_failing_turns_log_no_secret_and_carry_the_request_id(
    canary_chat: tuple[ChatEnv, Capture], canaries: Canaries
) -> None:
    env, capture = canary_chat
    text, leaked = message_with_secrets(canaries, "fail")
    capture.secrets.append(leaked)
    echo = (
        f"Incorrect API key provided: {canaries.openai_key}. "
        f"You sent: {leaked} password={canaries.body_password}"
    )
    anthropic_echo = f"invalid x-api-key {canaries.anthropic_key}; body had {leaked}"

    # 1. primary fails with a body echoing secrets, the secondary answers (fallback is logged)
    env.stub.queue_faults("openai", Fault("server_error", message=echo))
    fallback = turn(env, text)
    assert fallback.status == "ok" and fallback.fallback_from == ("openai",), fallback

    # 2. every provider fails, both error bodies echo secrets
    env.stub.queue_faults("openai", Fault("unavailable", message=echo))
    env.stub.queue_faults("anthropic", Fault("overloaded", message=anthropic_echo))
    down = turn(env, text)
    assert down.status == "error"

    # 3. the key is refused (401, no fallback) with the key in the body
    env.stub.queue_faults("openai", Fault("unauthorized", message=echo))
    refused = turn(env, text)
    assert refused.status == "error" and refused.error_code == "auth"

    # 4. an error event mid-stream, its message echoing secrets
    env.stub.queue_faults("openai", Fault("error_event", after_chunks=1, message=echo))
    cut = turn(env, text)
    assert cut.status == "interrupted"

    assert len(env.stub.requests()) == 6  # every fault was really served
    capture.assert_clean()
    logged = rids_in_logs(capture)
    for result in (fallback, down, refused, cut):
        assert result.request_id in logged, result
    assert f"[{down.request_id}] all providers failed" in capture.stream.getvalue()
    # the logged error reached Sentry (logging integration), tagged with its request id
    sent = [e for e in capture.transport.events if e.get("tags", {}).get("request_id") == down.request_id]
    assert sent, capture.transport.events


def test_crash_mid_turn_logs_and_reports_no_secret(
    canary_chat: tuple[ChatEnv, Capture], canaries: Canaries, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, capture = canary_chat
    text, leaked = message_with_secrets(canaries, "crash")
    capture.secrets.append(leaked)

    def broken_assembler(*args: Any, **kwargs: Any) -> Any:
        settings = get_settings()
        api_key = settings.openai_api_key  # a local holding the secret (Sentry must not send locals)
        raise RuntimeError(
            f"assembler failed with key {api_key.get_secret_value() if api_key else ''}, "
            f"salt {canaries.salt}, message secret {leaked}, password={canaries.body_password!r}"
        )

    monkeypatch.setattr(core_chat, "assemble_prompt", broken_assembler)
    result = turn(env, text)
    assert result.status == "error" and result.error_code == "internal"

    capture.assert_clean()
    assert result.request_id in rids_in_logs(capture)
    log_text = capture.stream.getvalue()
    assert f"[{result.request_id}] unhandled RuntimeError in chat.run_turn" in log_text
    assert "RuntimeError: assembler failed with key [REDACTED]" in log_text  # the traceback is kept
    (event,) = [e for e in capture.transport.events if "exception" in e]
    assert event["tags"]["request_id"] == result.request_id
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    assert all("vars" not in f for v in event["exception"]["values"] for f in v["stacktrace"]["frames"])
    assert current_request_id() is None  # the turn's context did not leak
