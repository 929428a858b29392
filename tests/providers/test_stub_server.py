"""The stub itself: HTTP control API, per-request headers, standalone mode."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.stubs.provider_server import Fault, ProviderStubServer, Reply

ROOT = Path(__file__).resolve().parents[2]


def _post(url: str, payload: object) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_http_control_sets_faults_replies_and_lists_requests(stub: ProviderStubServer):
    client = openai.OpenAI(base_url=stub.openai_base_url, api_key="k", max_retries=0)
    assert _post(f"{stub.url}/_control/fault", {"api": "openai", "fault": {"kind": "overloaded"}}) == {
        "ok": True
    }
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    _post(f"{stub.url}/_control/fault", {"api": "openai", "fault": None})
    _post(f"{stub.url}/_control/reply", {"api": "*", "reply": {"text": "controlled"}})
    done = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert done.choices[0].message.content == "controlled"
    with urllib.request.urlopen(f"{stub.url}/_control/requests", timeout=5) as resp:
        recorded = json.loads(resp.read())
    assert [r["api"] for r in recorded] == ["openai", "openai"]
    _post(f"{stub.url}/_control/reset", {})
    assert stub.requests() == []


def test_bad_control_payload_is_a_400(stub: ProviderStubServer):
    with pytest.raises(urllib.error.HTTPError) as info:
        _post(f"{stub.url}/_control/fault", {"api": "openai", "fault": {"kind": "meteor"}})
    assert info.value.code == 400


def test_queued_faults_are_one_shot_and_headers_override(stub: ProviderStubServer):
    client = anthropic.Anthropic(base_url=stub.anthropic_base_url, api_key="k", max_retries=0)
    stub.queue_faults("anthropic", Fault("rate_limited"))
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    ok = client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert ok.content[0].type == "text"
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(
            model="m",
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-stub-fault": "overloaded"},
        )
    reply = client.messages.create(
        model="m",
        max_tokens=5,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-stub-reply": json.dumps({"text": "per request"})},
    )
    assert reply.content[0].text == "per request"  # type: ignore[union-attr]


def test_reply_splits_into_the_requested_number_of_chunks():
    assert Reply(text="abcdefghij", chunks=3).pieces() == ["abcd", "efg", "hij"]
    assert "".join(Reply(text="Hello there world").pieces()) == "Hello there world"


def test_runs_standalone_with_a_port():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.stubs.provider_server", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split("listening on ", 1)[1].split()[0]
        with urllib.request.urlopen(f"{url}/_control/health", timeout=5) as resp:
            assert json.loads(resp.read()) == {"ok": True}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
