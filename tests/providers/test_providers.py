"""Each SDK adapter against the loopback stub: text, usage, what was sent, error mapping."""

from __future__ import annotations

import pytest
from openai.types import CompletionUsage

from core.providers.base import Deadline, Done, ErrorKind, InputUsage, ProviderError, ProviderTimeouts, Usage
from core.providers.openai_provider import usage_from_openai
from tests.providers.conftest import ANTHROPIC_TEST_KEY, OPENAI_TEST_KEY, QUESTION, SYSTEM
from tests.providers.helpers import FakeClock, collect
from tests.stubs.provider_server import Fault, ProviderStubServer, Reply

APIS = ("openai", "anthropic")


@pytest.mark.parametrize("api", APIS)
def test_streams_text_in_chunks_then_usage_then_done(api: str, stub: ProviderStubServer, make_provider):
    stub.set_reply(
        api, Reply(text="Split it only where teams are blocked.", input_tokens=30, output_tokens=9)
    )
    got = collect(make_provider(api).stream(QUESTION, system=SYSTEM, request_id="rid-1"))

    assert got.text == "Split it only where teams are blocked."
    assert got.deltas == 7  # one chunk per word: streamed, not buffered
    assert got.order[-2:] == ["Usage", "Done"]
    assert got.usage == [Usage(input_tokens=30, output_tokens=9)]
    assert got.done[0].stop_reason == ("stop" if api == "openai" else "end_turn")
    assert got.done[0].provider_request_id is not None
    assert got.done[0].provider_request_id.startswith("req_stub_")


def test_openai_usage_normalises_cached_tokens(stub: ProviderStubServer, make_provider):
    # the stub reports prompt_tokens = 120 + 80 = 200 with prompt_tokens_details.cached_tokens = 80
    stub.set_reply("openai", Reply(text="ok", input_tokens=120, cached_tokens=80, output_tokens=17))
    usage = collect(make_provider("openai").stream(QUESTION, system=SYSTEM, request_id="r")).usage
    assert usage == [Usage(input_tokens=120, output_tokens=17, cached_input_tokens=80, cache_write_tokens=0)]
    assert usage[0].total_input_tokens == 200


def test_anthropic_usage_has_cache_read_and_write(stub: ProviderStubServer, make_provider):
    stub.set_reply(
        "anthropic",
        Reply(text="ok", input_tokens=50, cached_tokens=300, cache_write_tokens=25, output_tokens=9),
    )
    usage = collect(make_provider("anthropic").stream(QUESTION, system=SYSTEM, request_id="r")).usage
    assert usage == [Usage(input_tokens=50, output_tokens=9, cached_input_tokens=300, cache_write_tokens=25)]


def test_openai_request_asks_for_usage_and_carries_system_prompt(stub: ProviderStubServer, make_provider):
    collect(make_provider("openai").stream(QUESTION, system=SYSTEM, request_id="rid-42"))
    [req] = stub.requests("openai")
    assert req.path == "/v1/chat/completions"
    assert req.body["stream"] is True
    assert req.body["stream_options"] == {"include_usage": True}
    assert req.body["model"] == "gpt-4o-mini"
    assert req.body["messages"][0] == {"role": "system", "content": SYSTEM}
    assert req.body["messages"][1] == {"role": "user", "content": QUESTION[0].content}
    assert req.headers["authorization"] == f"Bearer {OPENAI_TEST_KEY}"
    assert req.headers["x-client-request-id"] == "rid-42"


def test_anthropic_request_uses_system_param_and_max_tokens(stub: ProviderStubServer, make_provider):
    collect(make_provider("anthropic", max_tokens=321).stream(QUESTION, system=SYSTEM, request_id="rid-7"))
    [req] = stub.requests("anthropic")
    assert req.path == "/v1/messages"
    assert req.body["stream"] is True
    assert req.body["system"] == SYSTEM
    assert req.body["max_tokens"] == 321
    assert req.body["messages"] == [{"role": "user", "content": QUESTION[0].content}]
    # anthropic 2.x sends the key as a bearer token (older SDKs used x-api-key)
    assert ANTHROPIC_TEST_KEY in (req.headers.get("x-api-key"), req.headers.get("authorization", "")[7:])
    assert req.headers["x-client-request-id"] == "rid-7"


def test_anthropic_request_without_a_system_prompt_has_no_system(stub: ProviderStubServer, make_provider):
    collect(make_provider("anthropic").stream(QUESTION, system="", request_id="r"))
    [req] = stub.requests("anthropic")
    assert "system" not in req.body


def test_anthropic_request_turns_on_automatic_prompt_caching(stub: ProviderStubServer, make_provider):
    """The 5-minute cache (the write price pricing.toml holds); the API places the breakpoint."""
    collect(make_provider("anthropic").stream(QUESTION, system=SYSTEM, request_id="r1"))
    collect(make_provider("anthropic", prompt_cache=False).stream(QUESTION, system=SYSTEM, request_id="r2"))
    cached, plain = stub.requests("anthropic")
    assert cached.body["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    assert "cache_control" not in plain.body
    assert cached.body["system"] == plain.body["system"] == SYSTEM  # the prompt itself is unchanged


def test_base_url_without_key_uses_a_placeholder(stub: ProviderStubServer, make_provider):
    got = collect(
        make_provider("openai", api_key=None, model="llama3.1").stream(QUESTION, system="", request_id="r")
    )
    assert got.text
    [req] = stub.requests("openai")
    assert req.headers["authorization"] == "Bearer not-needed"
    assert req.body["messages"][0]["role"] == "user"  # no empty system message


STATUS_CASES = [
    ("rate_limited", ErrorKind.RATE_LIMITED, 429),
    ("server_error", ErrorKind.SERVER, 500),
    ("unavailable", ErrorKind.SERVER, 503),
    ("overloaded", ErrorKind.SERVER, 529),
    ("unauthorized", ErrorKind.AUTH, 401),
    ("forbidden", ErrorKind.AUTH, 403),
    ("bad_request", ErrorKind.BAD_REQUEST, 400),
    ("not_found", ErrorKind.BAD_REQUEST, 404),
    ("unprocessable", ErrorKind.BAD_REQUEST, 422),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("fault", "kind", "status"), STATUS_CASES)
def test_http_errors_map_to_the_taxonomy(api, fault, kind, status, stub: ProviderStubServer, make_provider):
    stub.set_fault(api, Fault(fault))
    with pytest.raises(ProviderError) as info:
        collect(make_provider(api).stream(QUESTION, system=SYSTEM, request_id="r"))
    err = info.value
    assert (err.kind, err.status_code, err.provider) == (kind, status, api)
    assert err.kind.fallback_ok is (kind in {ErrorKind.RATE_LIMITED, ErrorKind.SERVER})
    assert len(stub.requests(api)) == 1  # max_retries=0: no SDK retry


@pytest.mark.parametrize("api", APIS)
def test_rate_limit_carries_retry_after(api: str, stub: ProviderStubServer, make_provider):
    stub.set_fault(api, Fault("rate_limited", retry_after=7))
    with pytest.raises(ProviderError) as info:
        collect(make_provider(api).stream(QUESTION, system=SYSTEM, request_id="r"))
    assert info.value.retry_after == 7.0


STREAM_CASES = [
    (Fault("slow_first_byte", delay_s=2.5), ErrorKind.TIMEOUT),
    (Fault("reset"), ErrorKind.CONNECTION),
    (Fault("cut", after_chunks=0), ErrorKind.CONNECTION),
    (Fault("cut", after_chunks=2), ErrorKind.CONNECTION),
    (Fault("stall", after_chunks=1, delay_s=2.5), ErrorKind.TIMEOUT),
    (Fault("malformed", after_chunks=0), ErrorKind.SERVER),
    (Fault("malformed", after_chunks=3), ErrorKind.SERVER),
    (Fault("error_event", after_chunks=1), ErrorKind.SERVER),
    (Fault("no_finish"), ErrorKind.CONNECTION),
    (Fault("no_terminator"), ErrorKind.CONNECTION),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(("fault", "kind"), STREAM_CASES, ids=lambda v: getattr(v, "kind", str(v)))
def test_transport_and_stream_faults_map_to_the_taxonomy(
    api, fault, kind, stub: ProviderStubServer, make_provider
):
    stub.set_reply(api, Reply(text="one two three four five six"))
    stub.set_fault(api, fault)
    texts: list[str] = []
    with pytest.raises(ProviderError) as info:
        for event in make_provider(api).stream(QUESTION, system=SYSTEM, request_id="r"):
            texts.append(getattr(event, "text", ""))
    assert info.value.kind is kind
    assert info.value.provider == api
    if fault.kind in ("cut", "stall", "malformed", "error_event"):
        words = ["one", "two", "three", "four", "five", "six"][: fault.after_chunks]
        assert "".join(texts) == "".join(f"{w} " for w in words)


# JSON of the wrong shape where a provider reads a streamed event (the SDKs build their typed events
# without validating them): each is a malformed event (server: the next provider is tried before any
# text).
WRONG_SHAPED_EVENTS = [
    ("openai", "[1, 2]"),
    ("openai", '"text"'),
    ("openai", '{"id": "c", "choices": "x"}'),
    ("openai", '{"id": "c", "choices": [1]}'),
    ("openai", '{"id": "c", "choices": [{"index": 0, "delta": "x"}]}'),
    ("openai", '{"id": "c", "choices": [{"index": 0, "delta": {"content": 42}}]}'),
    ("openai", '{"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": 1}]}'),
    ("openai", '{"id": "c", "choices": [], "usage": "lots"}'),
    ("openai", '{"id": "c", "choices": [], "usage": {"prompt_tokens": 5}}'),
    ("openai", '{"id": "c", "choices": [], "usage": {"prompt_tokens": "5", "completion_tokens": 3}}'),
    ("openai", '{"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": -1}}'),
    ("openai", '{"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": true}}'),
    ("openai", '{"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, '
               '"prompt_tokens_details": [80]}}'),
    ("openai", '{"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, '
               '"prompt_tokens_details": {"cached_tokens": 1.5}}}'),
    ("anthropic", "[1]"),
    ("anthropic", '{"type": "content_block_delta", "index": 0, "delta": "x"}'),
    ("anthropic", '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}}'),
    ("anthropic", '{"type": "message_start", "message": {"id": "m"}}'),
    ("anthropic", '{"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": "3"}}}'),
    ("anthropic", '{"type": "message_delta", "delta": {"stop_reason": "end_turn"}}'),
    ("anthropic", '{"type": "message_delta", "delta": {"stop_reason": 1}, "usage": {"output_tokens": 2}}'),
    ("anthropic", '{"type": "message_delta", "delta": {}, "usage": {"output_tokens": -2}}'),
]


@pytest.mark.parametrize(("api", "data"), WRONG_SHAPED_EVENTS)
@pytest.mark.parametrize("after_chunks", [0, 2])
def test_an_event_of_the_wrong_shape_is_a_malformed_event(
    api: str, data: str, after_chunks: int, stub: ProviderStubServer, make_provider
):
    stub.set_reply(api, Reply(text="one two three four"))
    stub.set_fault(api, Fault("malformed", after_chunks=after_chunks, message=data))
    texts: list[str] = []
    with pytest.raises(ProviderError) as info:
        for event in make_provider(api).stream(QUESTION, system=SYSTEM, request_id="r"):
            texts.append(getattr(event, "text", ""))
    assert info.value.kind is ErrorKind.SERVER
    assert "malformed event" in str(info.value)
    assert "".join(texts) == "".join(f"{w} " for w in ["one", "two"][:after_chunks])


def test_openai_usage_is_normalised_from_the_sdks_usage() -> None:
    full = CompletionUsage.model_validate(
        {"prompt_tokens": 200, "completion_tokens": 17, "total_tokens": 217,
         "prompt_tokens_details": {"cached_tokens": 80, "cache_write_tokens": 20, "audio_tokens": 0}}
    )
    assert usage_from_openai(full) == Usage(input_tokens=100, output_tokens=17, cached_input_tokens=80,
                                            cache_write_tokens=20)
    # servers that send no details (Ollama, vLLM), or nulls in them
    assert usage_from_openai(
        CompletionUsage.model_validate({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
    ) == Usage(5, 3)
    assert usage_from_openai(
        CompletionUsage.model_validate({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8,
                                        "prompt_tokens_details": {"cached_tokens": None}})
    ) == Usage(5, 3)
    # usage of the wrong shape inside a stream: test_an_event_of_the_wrong_shape_is_a_malformed_event


def test_openai_stream_of_the_cache_write_tokens(stub: ProviderStubServer, make_provider):
    stub.set_reply("openai", Reply(text="ok", input_tokens=100, cached_tokens=80, cache_write_tokens=20,
                                   output_tokens=17))
    usage = collect(make_provider("openai").stream(QUESTION, system=SYSTEM, request_id="r")).usage
    assert usage == [Usage(input_tokens=100, output_tokens=17, cached_input_tokens=80, cache_write_tokens=20)]


def test_openai_server_that_streams_no_usage_completes_at_its_finish_reason(
    stub: ProviderStubServer, make_provider
):
    """A server that ignores include_usage (some OpenAI-compatible ones) sends no usage key at all."""
    stub.set_reply("openai", Reply(text="one two", stream_usage=False))
    got = collect(make_provider("openai").stream(QUESTION, system=SYSTEM, request_id="r"))
    assert got.text == "one two"
    assert got.order[-1:] == ["Done"] and got.usage == []
    assert got.done[0].stop_reason == "stop"


@pytest.mark.parametrize("api", APIS)
def test_a_stream_without_its_terminator_is_an_error_after_all_its_text(
    api: str, stub: ProviderStubServer, make_provider
):
    """OpenAI: finish_reason came, the usage chunk and [DONE] did not; Anthropic: no message_stop."""
    stub.set_reply(api, Reply(text="one two three"))
    stub.set_fault(api, Fault("no_terminator"))
    texts: list[str] = []
    with pytest.raises(ProviderError) as info:
        for event in make_provider(api).stream(QUESTION, system=SYSTEM, request_id="r"):
            assert not isinstance(event, Usage | Done)
            texts.append(getattr(event, "text", ""))
    assert info.value.kind is ErrorKind.CONNECTION
    assert "".join(texts) == "one two three"


@pytest.mark.parametrize("api", APIS)
def test_anthropic_style_in_stream_rate_limit_event(api: str, stub: ProviderStubServer, make_provider):
    etype = "rate_limit_error" if api == "anthropic" else "rate_limit_exceeded"
    stub.set_fault(api, Fault("error_event", after_chunks=0, error_type=etype))
    with pytest.raises(ProviderError) as info:
        collect(make_provider(api).stream(QUESTION, system=SYSTEM, request_id="r"))
    assert info.value.kind is ErrorKind.RATE_LIMITED


@pytest.mark.parametrize("api", APIS)
def test_total_timeout_aborts_a_slow_stream(api: str, stub: ProviderStubServer, make_provider):
    stub.set_reply(api, Reply(text="a b c d e f g h i j", chunk_delay_s=0.15))
    timeouts = ProviderTimeouts(connect_s=2, first_token_s=1.0, total_s=0.6)
    texts: list[str] = []
    with pytest.raises(ProviderError) as info:
        for event in make_provider(api, timeouts=timeouts).stream(QUESTION, system=SYSTEM, request_id="r"):
            texts.append(getattr(event, "text", ""))
    assert info.value.kind is ErrorKind.TIMEOUT
    assert "total timeout" in info.value.message
    assert len([t for t in texts if t]) < 10  # aborted mid-stream, not after it


@pytest.mark.parametrize("api", APIS)
def test_sdk_retries_follow_max_retries(api: str, stub: ProviderStubServer, make_provider):
    stub.queue_faults(api, Fault("server_error"))
    # the SDK's backoff counts against our first-token deadline (it is the user's wait), so allow it
    relaxed = ProviderTimeouts(connect_s=2, first_token_s=10, total_s=20)
    provider = make_provider(api, max_retries=1, timeouts=relaxed)
    got = collect(provider.stream(QUESTION, system=SYSTEM, request_id="r"))
    assert got.text
    assert len(stub.requests(api)) == 2


@pytest.mark.parametrize("api", APIS)
def test_api_key_never_appears_in_errors(api: str, stub: ProviderStubServer, make_provider):
    key = OPENAI_TEST_KEY if api == "openai" else ANTHROPIC_TEST_KEY
    stub.set_fault(api, Fault("unauthorized", message=f"Incorrect API key provided: {key}. Check it."))
    with pytest.raises(ProviderError) as info:
        collect(make_provider(api).stream(QUESTION, system=SYSTEM, request_id="r"))
    err = info.value
    assert err.kind is ErrorKind.AUTH
    for rendered in (str(err), repr(err), err.message):
        assert key not in rendered
        assert key[:12] not in rendered
    assert "Incorrect API key provided" in err.message


def test_connection_refused_is_a_connection_error(make_provider):
    import socket

    from core.providers.openai_provider import OpenAIProvider

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = OpenAIProvider(model="m", api_key="k", base_url=f"http://127.0.0.1:{port}/v1", timeouts=FAST_T)
    with pytest.raises(ProviderError) as info:
        collect(provider.stream(QUESTION, system="", request_id="r"))
    assert info.value.kind is ErrorKind.CONNECTION


FAST_T = ProviderTimeouts(connect_s=1, first_token_s=1, total_s=2)


def test_deadline_enforces_first_token_and_total():
    clock = FakeClock()
    d = Deadline(ProviderTimeouts(connect_s=1, first_token_s=2, total_s=5), "p", clock=clock)
    clock.advance(1.9)
    d.check()
    clock.advance(0.2)
    with pytest.raises(ProviderError, match="first-token"):
        d.check()
    d.got_text = True
    d.check()  # after the first token only the total applies
    clock.advance(3.0)
    with pytest.raises(ProviderError, match="total") as info:
        d.check()
    assert info.value.kind is ErrorKind.TIMEOUT
    # a total shorter than the first-token limit is the one that runs out, and is named
    short = Deadline(ProviderTimeouts(connect_s=1, first_token_s=10, total_s=3), "p", clock=clock)
    clock.advance(3.1)
    with pytest.raises(ProviderError, match="total timeout of 3s"):
        short.check()


@pytest.mark.parametrize(
    "fault",
    [Fault("cut", after_chunks=2), Fault("malformed", after_chunks=3), Fault("no_finish"), Fault("no_terminator")],
    ids=lambda f: f.kind,
)
def test_anthropic_failure_after_message_start_keeps_the_input_usage(
    fault: Fault, stub: ProviderStubServer, make_provider
):
    """The input counts come in message_start: a stream that fails later still reports them."""
    stub.set_reply("anthropic", Reply(text="one two three four", input_tokens=77, cached_tokens=500,
                                      cache_write_tokens=12))
    stub.set_fault("anthropic", fault)
    with pytest.raises(ProviderError) as info:
        collect(make_provider("anthropic").stream(QUESTION, system=SYSTEM, request_id="r"))
    assert info.value.input_usage == InputUsage(input_tokens=77, cached_input_tokens=500, cache_write_tokens=12)


@pytest.mark.parametrize("api", APIS)
def test_failure_before_any_usage_reports_none(api: str, stub: ProviderStubServer, make_provider):
    stub.set_fault(api, Fault("reset"))
    with pytest.raises(ProviderError) as info:
        collect(make_provider(api).stream(QUESTION, system=SYSTEM, request_id="r"))
    assert info.value.input_usage is None
    if api == "openai":  # OpenAI reports usage only in the last chunk: a cut stream has none
        stub.set_fault("openai", Fault("cut", after_chunks=2))
        with pytest.raises(ProviderError) as info:
            collect(make_provider("openai").stream(QUESTION, system=SYSTEM, request_id="r"))
        assert info.value.input_usage is None


def test_anthropic_reports_the_input_counts_as_soon_as_the_stream_starts(stub: ProviderStubServer, make_provider):
    """message_start's counts are passed on before any text, so an answer stopped by the user (the
    stream closed early, no error) still knows its input; OpenAI reports usage only at the end."""
    stub.set_reply("anthropic", Reply(text="one two three", input_tokens=61, cached_tokens=400,
                                      cache_write_tokens=7))
    got = collect(make_provider("anthropic").stream(QUESTION, system=SYSTEM, request_id="r"))
    assert got.order[0] == "InputUsage" and got.order[1] == "TextDelta"
    assert got.input_usage == [InputUsage(input_tokens=61, cached_input_tokens=400, cache_write_tokens=7)]
    assert got.usage[0].input_tokens == 61

    stub.set_reply("openai", Reply(text="one two three"))
    assert collect(make_provider("openai").stream(QUESTION, system=SYSTEM, request_id="r")).input_usage == []
