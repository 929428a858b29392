"""core.log_setup (C8 / C9): request ids on every log line; no secret reaches the log output."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from core.log_setup import setup_logging
from core.redaction import REDACTED
from core.request_context import current_request_id, request_context
from tests.security.conftest import Canaries, canary_settings, log_every_secret_shape

pytestmark = pytest.mark.usefixtures("clean_observability")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_log_output_has_no_canary_and_carries_request_id(canaries: Canaries, fmt: str) -> None:
    stream = io.StringIO()
    settings = canary_settings(canaries, log_format=fmt, log_level="DEBUG")
    setup_logging(settings, stream=stream)
    setup_logging(settings, stream=stream)  # idempotent: a Streamlit rerun
    logger = logging.getLogger("advisor.chat")
    with request_context(page="chat") as rid:
        log_every_secret_shape(canaries, logger)
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


def test_request_id_is_dash_outside_a_request(canaries: Canaries) -> None:
    stream = io.StringIO()
    setup_logging(canary_settings(canaries), stream=stream)
    assert current_request_id() is None
    logging.getLogger("advisor").info("no request")
    assert " advisor [-] no request" in stream.getvalue()


def test_third_party_warnings_are_redacted(canaries: Canaries) -> None:
    stream = io.StringIO()
    setup_logging(canary_settings(canaries), stream=stream)
    logging.getLogger("httpx").warning("retrying with api_key=%s", canaries.openai_key)
    logging.getLogger("httpx").info("not shown: below WARNING for libraries")
    assert "retrying with api_key=[REDACTED]" in stream.getvalue()
    assert "not shown" not in stream.getvalue()
