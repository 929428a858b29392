"""core.redaction (C9): secret shapes and registered secrets are masked, ordinary text is kept, and
log records are rewritten in place so every other handler sees only redacted text."""

from __future__ import annotations

import io
import logging

import pytest

from core.log_setup import setup_logging
from core.redaction import ADDRESS_MASK, REDACTED, redact, redact_value, register_secrets, scrub_addresses
from tests.security.conftest import Canaries, canary_settings, log_every_secret_shape

pytestmark = pytest.mark.usefixtures("clean_observability")


def test_records_are_redacted_for_other_handlers_too(
    canaries: Canaries, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging(canary_settings(canaries), stream=io.StringIO())
    caplog.set_level(logging.INFO)
    log_every_secret_shape(canaries, logging.getLogger("advisor.providers"))
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


# ------------------------------------------------------------------------------------------------
# network addresses (C25: for Sentry only; the local logs keep them)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('127.0.0.1:54321 - "GET /analytics HTTP/1.1" 200', '[ip] - "GET /analytics HTTP/1.1" 200'),
        ("client ('203.0.113.9', 443)", "client ('[ip]', 443)"),
        ("X-Forwarded-For: 203.0.113.9, 198.51.100.2", "X-Forwarded-For: [ip], [ip]"),
        ("http://127.0.0.1:8501/chat?x=1", "http://[ip]/chat?x=1"),
        ("peer [2001:db8::7]:443 closed", "peer [ip] closed"),
        ("from ::1 and fe80::1%eth0.", "from [ip] and [ip]."),
        ("mapped ::ffff:10.0.0.1 here", "mapped [ip] here"),
        ("full 2001:0db8:0000:0000:0000:ff00:0042:8329", "full [ip]"),
    ],
)
def test_scrub_addresses_masks_ipv4_and_ipv6_with_ports(text: str, expected: str) -> None:
    assert scrub_addresses(text) == expected
    assert ADDRESS_MASK == "[ip]"


@pytest.mark.parametrize(
    "text",
    [
        "at 08:52:29.054 the run took 1.67 s",
        "release advisor@0.1.0 on streamlit 1.67.0",
        "MAC aa:bb:cc:dd:ee:ff and 256.1.1.1 and std::string",
        "a :: b and ratio 3:2",
    ],
)
def test_scrub_addresses_keeps_text_that_only_looks_like_one(text: str) -> None:
    assert scrub_addresses(text) == text


def test_redact_value_scrubs_addresses_only_when_asked() -> None:
    event = {"breadcrumbs": [{"message": "127.0.0.1:5 - GET", "data": {"peer": ("10.0.0.2", 80)}}]}
    assert redact_value(event) == event
    assert redact_value(event, addresses=True) == {
        "breadcrumbs": [{"message": "[ip] - GET", "data": {"peer": ("[ip]", 80)}}]
    }
