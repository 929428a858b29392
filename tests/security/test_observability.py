"""C8 / C9: request ids on every log line; no secret reaches the logs or Sentry."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import Transport

from core import observability
from core.observability import (
    REDACTED,
    current_request_id,
    init_sentry,
    log_exception,
    new_request_id,
    redact,
    register_secrets,
    request_context,
    setup_logging,
    user_error_message,
)
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


def _log_everything(c: Canaries, logger: logging.Logger) -> None:
    logger.info("openai key in text %s-%s", "x", c.openai_key)
    logger.info(f"anthropic key in the message {c.anthropic_key}")
    logger.warning("db url %s", f"postgresql+psycopg://advisor:{c.db_password}@db:5432/advisor")
    logger.info("redis %s", f"redis://:{c.redis_password}@127.0.0.1:6379/0")
    logger.info("body %s", json.dumps({"email": "a@b.c", "password": c.body_password}))
    logger.info("repr %r", {"password": c.body_password})
    logger.info("form password=%s&user=bob", c.body_password)
    logger.info("headers Authorization: Bearer %s", c.bearer)
    logger.info("jwt %s", c.jwt)
    logger.info("salt %s", c.salt)
    logger.info("extra field", extra={"detail": f"key={c.openai_key}"})
    try:
        raise ValueError(f"provider rejected key {c.openai_key} (salt {c.salt})")
    except ValueError:
        logger.exception("call failed with %s", c.anthropic_key)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_output_has_no_canary_and_carries_request_id(canaries: Canaries, fmt: str) -> None:
    stream = io.StringIO()
    settings = canary_settings(canaries, log_format=fmt, log_level="DEBUG")
    setup_logging(settings, stream=stream)
    setup_logging(settings, stream=stream)  # idempotent: a Streamlit rerun
    logger = logging.getLogger("advisor.chat")
    with request_context(page="chat") as rid:
        _log_everything(canaries, logger)
    output = stream.getvalue()
    lines = output.strip().splitlines()
    for canary in canaries.all():
        assert canary not in output, canary
    assert REDACTED in output
    assert "ValueError" in output  # the traceback is kept, only the secrets are masked
    assert "bob" in output and "a@b.c" in output  # non-secrets are kept
    if fmt == "json":
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert len(records) == 12  # one line per record: the handler was not added twice
        assert {r["request_id"] for r in records} == {rid}
        assert {r["page"] for r in records} == {"chat"}
        assert records[-1]["exception"].startswith("Traceback")
    else:
        heads = [line for line in lines if re.match(r"\d{4}-\d\d-\d\d ", line)]
        assert len(heads) == 12
        assert all(f" advisor.chat [{rid}] " in line for line in heads)


def test_records_are_redacted_for_other_handlers_too(
    canaries: Canaries, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging(canary_settings(canaries), stream=io.StringIO())
    caplog.set_level(logging.INFO)
    _log_everything(canaries, logging.getLogger("advisor.providers"))
    # what any handler formats: message, args, cached exception text, stack text, extras
    fields = [
        f"{r.msg} {r.args} {r.exc_text} {r.stack_info} {getattr(r, 'detail', '')}"
        for r in caplog.records
        if r.name.startswith("advisor")
    ]
    text = caplog.text + "".join(fields)
    assert "provider rejected key" in caplog.text
    for canary in canaries.all():
        assert canary not in text, canary


def test_request_id_is_dash_outside_a_request(canaries: Canaries) -> None:
    stream = io.StringIO()
    setup_logging(canary_settings(canaries), stream=stream)
    assert current_request_id() is None
    logging.getLogger("advisor").info("no request")
    assert " advisor [-] no request" in stream.getvalue()


def test_request_context_nests_and_restores() -> None:
    rid = new_request_id()
    assert re.fullmatch(r"[0-9a-f]{12}", rid)
    assert new_request_id() != rid
    with request_context(rid, page="chat") as outer:
        assert outer == rid == current_request_id()
        with request_context() as inner:
            assert inner != rid and current_request_id() == inner
            assert observability.current_page() == "chat"
        assert current_request_id() == rid
    assert current_request_id() is None


def test_third_party_warnings_are_redacted(canaries: Canaries) -> None:
    stream = io.StringIO()
    setup_logging(canary_settings(canaries), stream=stream)
    logging.getLogger("httpx").warning("retrying with api_key=%s", canaries.openai_key)
    logging.getLogger("httpx").info("not shown: below WARNING for libraries")
    assert "retrying with api_key=[REDACTED]" in stream.getvalue()
    assert "not shown" not in stream.getvalue()


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=2048 input_tokens: 12 output_tokens=7 token_count=3",
        "prompt_sha256=" + "ab" * 32,
        "request a1b2c3d4e5f6 took 120 ms; first token arrived",
        "https://api.openai.com/v1/chat/completions",
        "postgresql+psycopg://advisor@127.0.0.1:5432/advisor",
    ],
)
def test_redact_keeps_ordinary_text(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("sk-proj-abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnop"),
        ("key sk-ant-api03-abcdefghijklmnopqrst_uvwxyz", "abcdefghijklmnop"),
        ("AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrst"),
        ('{"api_key": "s3cr3t-value"}', "s3cr3t-value"),
        ("{'client_secret': 'topsecret'}", "topsecret"),
        ('{\\"password\\": \\"esc4ped\\"}', "esc4ped"),
        ("password: 'with spaces inside'", "with spaces"),
        ('"access_token": 1234567890', "1234567890"),
        ("Proxy-Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("Cookie: session=abc123def", "abc123def"),
        ("https://u:p4ssw0rd@example.invalid/x", "p4ssw0rd"),
        ("GET /x?token=abcd1234&page=2", "abcd1234"),
        ("the secret is 0123456789abcdef0123", "0123456789abcdef0123"),
    ],
)
def test_redact_masks_secret_shapes(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert REDACTED in out


def test_registered_secret_is_masked_in_any_form() -> None:
    register_secrets(["plain words secret", "a/b+c=d&e", "short"])
    out = redact("x plain words secret y a%2Fb%2Bc%3Dd%26e z a/b+c=d&e short")
    assert "plain words secret" not in out and "a%2Fb" not in out and "a/b+c" not in out
    assert out.endswith("short")  # values under 6 characters are not registered


def test_user_error_message_names_the_reference() -> None:
    assert user_error_message("a1b2c3d4e5f6") == "Something went wrong — reference a1b2c3d4e5f6"


# ------------------------------------------------------------------------------------------------
# Sentry through a capturing transport
# ------------------------------------------------------------------------------------------------
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
