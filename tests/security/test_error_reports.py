"""core.error_reports (C8 / C9): errors are logged and sent to Sentry with their request id, and no
secret reaches a Sentry event."""

from __future__ import annotations

import io
import logging

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from core.error_reports import init_sentry, log_exception
from core.log_setup import setup_logging
from core.request_context import request_context
from tests.security.conftest import Canaries, canary_settings

pytestmark = pytest.mark.usefixtures("clean_observability")


class CapturingTransport(Transport):
    """Keeps every envelope (serialized) instead of sending it anywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.envelopes: list[bytes] = []
        self.items: list[dict[str, object]] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope.serialize())
        for item in envelope.items:
            if item.headers.get("type") in {"event", "transaction"}:
                payload = item.payload.json
                assert isinstance(payload, dict)
                self.items.append(payload)

    @property
    def text(self) -> str:
        return b"\n".join(self.envelopes).decode("utf-8", "replace")


def _provider_call(api_key: str, user_message: str, password: str) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}  # a local variable holding a secret
    prompt = f"system prompt for {user_message}"
    secret_holder = {"password": password, "prompt": prompt}  # local only, never in the message
    raise RuntimeError(f"provider rejected key {api_key}: {len(headers)} {len(secret_holder)}")


def test_sentry_events_hold_no_canary(canaries: Canaries) -> None:
    settings = canary_settings(canaries, sentry_environment="test", sentry_traces_sample_rate=1.0)
    setup_logging(settings, stream=io.StringIO())
    transport = CapturingTransport()
    assert init_sentry(settings, transport=transport)
    user_message = f"deploy notes {canaries.body_password}"
    prompt_canary = "prompt-canary-" + canaries.sentry_key[::-1]  # built at run time, not in source
    logger = logging.getLogger("advisor.chat")
    with request_context(page="chat") as rid:
        logger.info("breadcrumb with %s and %s", canaries.jwt, canaries.salt)
        sentry_sdk.set_extra("prompt", prompt_canary)
        sentry_sdk.set_extra("note", f"Authorization: Bearer {canaries.bearer}")
        with sentry_sdk.start_transaction(name=f"turn {canaries.openai_key}"):
            try:
                _provider_call(canaries.openai_key, user_message, canaries.body_password)
            except RuntimeError as exc:
                returned = log_exception(exc, where="chat turn")
        logger.error("provider down, key=%s", canaries.anthropic_key)  # via the logging integration
    sentry_sdk.flush()

    assert returned == rid
    text = transport.text
    assert text, "nothing captured"
    for canary in [*canaries.all(), prompt_canary, "@127.0.0.1:9/1"]:
        assert canary not in text, canary
    events = [e for e in transport.items if e.get("type") != "transaction"]
    assert len(events) == 2  # log_exception sends once; the logged error once
    exc_event = next(e for e in events if "exception" in e)
    assert exc_event["tags"]["request_id"] == rid  # type: ignore[index]
    assert exc_event["tags"]["page"] == "chat"  # type: ignore[index]
    assert exc_event["environment"] == "test"
    assert str(exc_event["release"]).startswith("advisor@")
    frames = exc_event["exception"]["values"][-1]["stacktrace"]["frames"]  # type: ignore[index]
    assert frames and all("vars" not in f for f in frames)  # no local variables at all
    assert "provider rejected key [REDACTED]" in exc_event["exception"]["values"][-1]["value"]  # type: ignore[index]
    assert exc_event["extra"]["prompt"] == "[Filtered]"  # type: ignore[index]
    crumbs = exc_event["breadcrumbs"]["values"]  # type: ignore[index]
    assert any("breadcrumb with" in str(b.get("message")) for b in crumbs)
    assert any(e.get("type") == "transaction" for e in transport.items)


def test_sentry_is_off_without_dsn(canaries: Canaries) -> None:
    settings = canary_settings(canaries, sentry_dsn=None)
    transport = CapturingTransport()
    assert init_sentry(settings, transport=transport) is False
    assert not sentry_sdk.get_client().is_active()
