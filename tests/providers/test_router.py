"""Fallback chain and circuit breaker, with real SDKs against the stub."""

from __future__ import annotations

import threading

import pytest

from core.providers.base import Done, ErrorKind, ProviderError
from core.providers.router import (
    AllProvidersFailed,
    BreakerStateName,
    ProviderRouter,
    Started,
    StreamInterrupted,
)
from tests.providers.conftest import QUESTION, SYSTEM
from tests.providers.helpers import FakeClock, collect
from tests.stubs.provider_server import Fault, ProviderStubServer, Reply

OTHER = {"openai": "anthropic", "anthropic": "openai"}

FALLBACK_CASES = [
    (Fault("rate_limited", retry_after=3), ErrorKind.RATE_LIMITED),
    (Fault("server_error"), ErrorKind.SERVER),
    (Fault("unavailable"), ErrorKind.SERVER),
    (Fault("overloaded"), ErrorKind.SERVER),
    (Fault("slow_first_byte", delay_s=2.5), ErrorKind.TIMEOUT),
    (Fault("reset"), ErrorKind.CONNECTION),
    (Fault("cut", after_chunks=0), ErrorKind.CONNECTION),
    (Fault("malformed", after_chunks=0), ErrorKind.SERVER),
    (Fault("error_event", after_chunks=0), ErrorKind.SERVER),
]


def _router(make_provider, primary: str, **kw) -> ProviderRouter:
    return ProviderRouter([make_provider(primary), make_provider(OTHER[primary])], **kw)


@pytest.mark.parametrize("primary", ["openai", "anthropic"])
@pytest.mark.parametrize(("fault", "kind"), FALLBACK_CASES, ids=lambda v: getattr(v, "kind", str(v)))
def test_falls_back_before_the_first_token(primary, fault, kind, stub: ProviderStubServer, make_provider):
    secondary = OTHER[primary]
    stub.set_fault(primary, fault)
    stub.set_reply(secondary, Reply(text="Answer from the secondary.", input_tokens=11, output_tokens=5))

    got = collect(_router(make_provider, primary).stream(QUESTION, system=SYSTEM, request_id="r"))

    assert got.order[0] == "Started" and got.order.count("Started") == 1
    [started] = got.started
    assert (started.provider, started.fallback_from) == (secondary, (primary,))
    assert [(e.provider, e.kind) for e in started.failures] == [(primary, kind)]
    assert got.text == "Answer from the secondary."
    assert got.usage[0].input_tokens == 11 and got.usage[0].output_tokens == 5
    assert len(stub.requests(primary)) == 1 and len(stub.requests(secondary)) == 1


@pytest.mark.parametrize("primary", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault("cut", after_chunks=2), ErrorKind.CONNECTION),
        (Fault("stall", after_chunks=2, delay_s=2.5), ErrorKind.TIMEOUT),
        (Fault("malformed", after_chunks=2), ErrorKind.SERVER),
        (Fault("error_event", after_chunks=2), ErrorKind.SERVER),
    ],
    ids=lambda v: getattr(v, "kind", str(v)),
)
def test_error_after_first_token_is_interrupted_with_partial_text(
    primary, fault, kind, stub: ProviderStubServer, make_provider
):
    stub.set_reply(primary, Reply(text="alpha beta gamma delta"))
    stub.set_fault(primary, fault)
    shown: list[str] = []
    started: list[Started] = []
    with pytest.raises(StreamInterrupted) as info:
        for event in _router(make_provider, primary).stream(QUESTION, system=SYSTEM, request_id="r"):
            if isinstance(event, Started):
                started.append(event)
            shown.append(getattr(event, "text", ""))
    err = info.value
    assert err.provider == primary and err.error.kind is kind and err.error_code == kind.value
    assert err.partial_text == "alpha beta " == "".join(shown)
    assert started[0].provider == primary
    assert stub.requests(OTHER[primary]) == []  # never fall back once text was shown


@pytest.mark.parametrize("primary", ["openai", "anthropic"])
@pytest.mark.parametrize("fault", [Fault("no_finish"), Fault("no_terminator")], ids=lambda f: f.kind)
def test_stream_ended_without_its_terminator_is_interrupted_not_done(
    primary, fault, stub: ProviderStubServer, make_provider
):
    """All the text arrived but not the stream's end ([DONE] / message_stop): interrupted, never done."""
    stub.set_reply(primary, Reply(text="alpha beta gamma delta"))
    stub.set_fault(primary, fault)
    shown: list[str] = []
    with pytest.raises(StreamInterrupted) as info:
        for event in _router(make_provider, primary).stream(QUESTION, system=SYSTEM, request_id="r"):
            assert not isinstance(event, Done)
            shown.append(getattr(event, "text", ""))
    assert info.value.error_code == "connection"
    assert info.value.partial_text == "alpha beta gamma delta" == "".join(shown)
    assert stub.requests(OTHER[primary]) == []


def test_all_providers_down_raises_with_the_last_error_code(stub: ProviderStubServer, make_provider):
    stub.set_fault("openai", Fault("unavailable"))
    stub.set_fault("anthropic", Fault("rate_limited"))
    with pytest.raises(AllProvidersFailed) as info:
        collect(_router(make_provider, "openai").stream(QUESTION, system=SYSTEM, request_id="r"))
    err = info.value
    assert [(e.provider, e.kind, e.status_code) for e in err.errors] == [
        ("openai", ErrorKind.SERVER, 503),
        ("anthropic", ErrorKind.RATE_LIMITED, 429),
    ]
    assert err.error_code == "rate_limited"


@pytest.mark.parametrize("primary", ["openai", "anthropic"])
@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault("unauthorized"), ErrorKind.AUTH),
        (Fault("forbidden"), ErrorKind.AUTH),
        (Fault("bad_request"), ErrorKind.BAD_REQUEST),
        (Fault("not_found"), ErrorKind.BAD_REQUEST),
        (Fault("unprocessable"), ErrorKind.BAD_REQUEST),
    ],
    ids=lambda v: getattr(v, "kind", str(v)),
)
def test_auth_and_bad_request_do_not_fall_back(primary, fault, kind, stub: ProviderStubServer, make_provider):
    stub.set_fault(primary, fault)
    router = _router(make_provider, primary, breaker_failures=1)
    with pytest.raises(ProviderError) as info:
        collect(router.stream(QUESTION, system=SYSTEM, request_id="r"))
    assert (info.value.provider, info.value.kind) == (primary, kind)
    assert stub.requests(OTHER[primary]) == []
    state = {s.name: s for s in router.breaker_states()}[primary]
    # not a health signal: even with a threshold of 1 the breaker stays closed
    assert state.state is BreakerStateName.CLOSED and state.consecutive_failures == 0
    assert state.last_error_kind == kind.value


def test_breaker_opens_after_n_failures_and_closes_after_cooldown(stub: ProviderStubServer, make_provider):
    clock = FakeClock()
    router = _router(make_provider, "openai", breaker_failures=2, breaker_cooldown_s=30, clock=clock)
    stub.set_fault("openai", Fault("server_error"))

    for _ in range(2):
        assert (
            collect(router.stream(QUESTION, system=SYSTEM, request_id="r")).started[0].provider == "anthropic"
        )
    states = {s.name: s for s in router.breaker_states()}
    assert states["openai"].state is BreakerStateName.OPEN
    assert states["openai"].consecutive_failures == 2
    assert states["openai"].last_error_kind == "server"
    assert states["openai"].last_error_at is not None
    assert states["openai"].cooldown_remaining_s == 30
    assert states["anthropic"].state is BreakerStateName.CLOSED

    # open: skipped without a request, still recorded as passed over
    started = collect(router.stream(QUESTION, system=SYSTEM, request_id="r")).started[0]
    assert (started.provider, started.fallback_from, started.failures) == ("anthropic", ("openai",), ())
    assert len(stub.requests("openai")) == 2

    clock.advance(29.9)
    collect(router.stream(QUESTION, system=SYSTEM, request_id="r"))
    assert len(stub.requests("openai")) == 2

    # cooldown over → half-open; the trial fails → open again at once (one failure is enough)
    clock.advance(0.2)
    assert {s.name: s.state for s in router.breaker_states()}["openai"] is BreakerStateName.HALF_OPEN
    collect(router.stream(QUESTION, system=SYSTEM, request_id="r"))
    assert len(stub.requests("openai")) == 3
    assert {s.name: s.state for s in router.breaker_states()}["openai"] is BreakerStateName.OPEN

    # next cooldown, provider healthy again → the trial succeeds → closed
    clock.advance(30)
    stub.set_fault("openai", None)
    started = collect(router.stream(QUESTION, system=SYSTEM, request_id="r")).started[0]
    assert (started.provider, started.fallback_from) == ("openai", ())
    state = {s.name: s for s in router.breaker_states()}["openai"]
    assert (state.state, state.consecutive_failures) == (BreakerStateName.CLOSED, 0)


def test_half_open_allows_exactly_one_trial(stub: ProviderStubServer, make_provider):
    clock = FakeClock()
    router = _router(make_provider, "openai", breaker_failures=1, breaker_cooldown_s=5, clock=clock)
    stub.queue_faults("openai", Fault("server_error"))
    collect(router.stream(QUESTION, system=SYSTEM, request_id="r"))
    clock.advance(5)

    trial = router.stream(QUESTION, system=SYSTEM, request_id="trial")
    first = next(trial)  # the trial request is now in flight
    assert isinstance(first, Started) and first.provider == "openai"
    other = collect(router.stream(QUESTION, system=SYSTEM, request_id="other")).started[0]
    assert (other.provider, other.fallback_from) == ("anthropic", ("openai",))
    collect(trial)
    assert {s.name: s.state for s in router.breaker_states()}["openai"] is BreakerStateName.CLOSED


def test_abandoned_trial_releases_the_half_open_slot(stub: ProviderStubServer, make_provider):
    clock = FakeClock()
    router = _router(make_provider, "openai", breaker_failures=1, breaker_cooldown_s=5, clock=clock)
    stub.queue_faults("openai", Fault("server_error"))
    collect(router.stream(QUESTION, system=SYSTEM, request_id="r"))
    clock.advance(5)
    trial = router.stream(QUESTION, system=SYSTEM, request_id="trial")
    next(trial)
    trial.close()  # the user navigated away
    assert collect(router.stream(QUESTION, system=SYSTEM, request_id="r")).started[0].provider == "openai"


def test_every_provider_skipped_fails_fast_with_circuit_open(stub: ProviderStubServer, make_provider):
    clock = FakeClock()
    router = ProviderRouter([make_provider("openai")], breaker_failures=1, breaker_cooldown_s=60, clock=clock)
    stub.set_fault("openai", Fault("overloaded"))
    with pytest.raises(AllProvidersFailed) as first:
        collect(router.stream(QUESTION, system=SYSTEM, request_id="r"))
    assert first.value.error_code == "server"
    with pytest.raises(AllProvidersFailed) as second:
        collect(router.stream(QUESTION, system=SYSTEM, request_id="r"))
    assert (second.value.errors, second.value.skipped, second.value.error_code) == (
        (),
        ("openai",),
        "circuit_open",
    )
    assert len(stub.requests("openai")) == 1


def test_router_is_safe_to_share_between_threads(stub: ProviderStubServer, make_provider):
    router = _router(make_provider, "openai")
    stub.set_reply("*", Reply(text="shared router answer"))
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                results.append(collect(router.stream(QUESTION, system=SYSTEM, request_id="r")).text)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert results == ["shared router answer"] * 40
    assert len(stub.requests("openai")) == 40


def test_empty_answer_still_reports_started_usage_and_done(stub: ProviderStubServer, make_provider):
    stub.set_reply("openai", Reply(text="", output_tokens=0))
    got = collect(_router(make_provider, "openai").stream(QUESTION, system=SYSTEM, request_id="r"))
    assert got.order == ["Started", "Usage", "Done"]
    assert got.started[0].provider == "openai"
