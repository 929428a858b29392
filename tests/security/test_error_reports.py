"""core.error_reports (C8 / C9): errors are logged and sent to Sentry with their request id, and no
secret reaches a Sentry event."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

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
        self.item_types: list[str] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        self.envelopes.append(envelope.serialize())
        for item in envelope.items:
            self.item_types.append(str(item.headers.get("type")))
            if item.headers.get("type") in {"event", "transaction"}:
                payload = item.payload.json
                assert isinstance(payload, dict)
                self.items.append(payload)

    @property
    def text(self) -> str:
        return b"\n".join(self.envelopes).decode("utf-8", "replace")


# any dotted quad, and the IPv6 addresses the tests use (in any of their written forms)
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6 = re.compile(r"2001:db8::7|2001:0?db8:0*:0*:0*:0*:0*:0*7|\[::1\]|fe80::1", re.I)


def assert_errors_only_without_addresses(transport: CapturingTransport) -> None:
    """C25: only events and transactions (no release-health session), and no IP address anywhere."""
    assert transport.envelopes, "nothing captured"
    assert not {"session", "sessions"} & set(transport.item_types), transport.item_types
    assert set(transport.item_types) <= {"event", "transaction"}, transport.item_types
    text = transport.text
    assert IPV4.findall(text) == [], IPV4.findall(text)
    assert IPV6.findall(text) == [], IPV6.findall(text)
    for event in transport.items:
        assert "env" not in (event.get("request") or {})  # type: ignore[operator]
        assert "ip_address" not in (event.get("user") or {})  # type: ignore[operator]


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
    assert_errors_only_without_addresses(transport)


def test_sentry_is_off_without_dsn(canaries: Canaries) -> None:
    settings = canary_settings(canaries, sentry_dsn=None)
    transport = CapturingTransport()
    assert init_sentry(settings, transport=transport) is False
    assert not sentry_sdk.get_client().is_active()


@pytest.fixture
def uvicorn_access() -> Iterator[logging.Logger]:
    """Uvicorn's access logger at INFO, as Uvicorn's own logging configuration sets it."""
    logger = logging.getLogger("uvicorn.access")
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield logger
    logger.setLevel(previous)


def test_sentry_gets_errors_only_and_no_client_address(canaries: Canaries, uvicorn_access: logging.Logger) -> None:
    """C25. A Starlette app (what Streamlit serves on) behind a proxy, reached from 127.0.0.1:54321:
    Sentry's Starlette integration would count each request as a release-health session, put the
    client's address in the request data, and Uvicorn's access lines become breadcrumbs. After
    requests, an unhandled error in one, access lines and an error captured by ``log_exception``,
    Sentry holds the two errors (and their breadcrumbs), no session and no address."""
    settings = canary_settings(canaries, sentry_environment="test")
    setup_logging(settings, stream=io.StringIO())
    transport = CapturingTransport()
    assert init_sentry(settings, transport=transport)
    client = sentry_sdk.get_client()
    assert client.options["auto_session_tracking"] is False
    assert client.should_send_default_pii() is False
    sentry_sdk.get_isolation_scope().clear_breadcrumbs()  # none left from an earlier test
    access = uvicorn_access

    async def ok(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.client.host if request.client else ''}")

    async def boom(request: Request) -> PlainTextResponse:
        raise RuntimeError("handler failed")

    app = Starlette(routes=[Route("/ok", ok), Route("/boom", boom)])
    proxy = {"X-Forwarded-For": "203.0.113.9, 198.51.100.2", "X-Real-IP": "203.0.113.9"}
    with TestClient(app, client=("127.0.0.1", 54321), raise_server_exceptions=False) as http:
        for path, status in (("/ok", 200), ("/ok", 200), ("/boom", 500)):
            assert http.get(path, headers=proxy).status_code == status
            access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:54321", "GET", path, "1.1", status)
    access.info('%s - "%s %s HTTP/%s" %d', "[2001:db8::7]:443", "GET", "/ok", "1.1", 200)
    with request_context(page="chat"):
        try:
            raise ConnectionResetError("peer fe80::1 reset the stream from [::1]:8501")
        except ConnectionResetError as exc:
            log_exception(exc, where="chat turn")
    sentry_sdk.flush()

    events = [e for e in transport.items if e.get("type") != "transaction"]
    assert len(events) == 2, events  # the handler's unhandled error, and log_exception's
    starlette_event = next(e for e in events if "handler failed" in str(e.get("exception")))
    assert str(starlette_event["request"]["url"]).endswith("/boom")  # type: ignore[index]
    exc_event = next(e for e in events if e is not starlette_event)
    assert exc_event["exception"]["values"][-1]["value"] == "peer [ip] reset the stream from [ip]"  # type: ignore[index]
    crumbs = [str(b.get("message")) for b in exc_event["breadcrumbs"]["values"]]  # type: ignore[index]
    assert '[ip] - "GET /boom HTTP/1.1" 500' in crumbs and '[ip] - "GET /ok HTTP/1.1" 200' in crumbs
    assert_errors_only_without_addresses(transport)
