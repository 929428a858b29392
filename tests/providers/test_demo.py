"""The offline demo provider: deterministic, input-derived, streamed, priced at 0."""

from __future__ import annotations

from core.pricing import cost_usd
from core.providers.base import ChatMessage, Usage
from core.providers.demo import DemoProvider, estimate_tokens
from core.providers.router import ProviderRouter
from tests.providers.helpers import collect

# Like an assembled prompt: other headings first, the agent atom's "# Mode: …" heading later.
SYSTEM = "# Who you are\nYou are Advisor.\n\n# Mode: Hiring plan\nYou help engineering leaders plan hiring."
MESSAGES = [
    ChatMessage("user", "We are a team of 6."),
    ChatMessage("assistant", "Noted."),
    ChatMessage("user", "Should we hire two senior engineers or four juniors next quarter? Budget is tight."),
]


def test_answer_is_derived_from_the_input_and_deterministic():
    sleeps: list[float] = []
    provider = DemoProvider(delay_ms=20, sleep=sleeps.append)
    got = collect(provider.stream(MESSAGES, system=SYSTEM, request_id="abc"))
    again = collect(DemoProvider(delay_ms=0).stream(MESSAGES, system=SYSTEM, request_id="abc"))

    assert got.text == again.text
    assert "Advisor mode: Hiring plan." in got.text
    assert "Should we hire two senior engineers or four juniors next quarter?" in got.text
    assert "after 1 earlier question" in got.text
    assert "For hiring questions" in got.text
    assert "ADVISOR_OPENAI_API_KEY" in got.text
    assert got.deltas == len(got.text.split()) > 20  # word by word
    assert sleeps == [0.02] * (got.deltas - 1)
    assert got.done[0].provider_request_id == "demo-abc"


def test_different_questions_give_different_answers():
    a = DemoProvider(delay_ms=0).answer([ChatMessage("user", "How do we run a post-mortem?")], "")
    b = DemoProvider(delay_ms=0).answer([ChatMessage("user", "How should we price the API?")], "")
    assert a != b and "incident review" in a and "For pricing" in b


def test_usage_is_estimated_from_lengths_and_costs_nothing():
    provider = DemoProvider(delay_ms=0)
    got = collect(provider.stream(MESSAGES, system=SYSTEM, request_id="r"))
    prompt = SYSTEM + "".join(m.content for m in MESSAGES)
    assert got.usage == [Usage(input_tokens=estimate_tokens(prompt), output_tokens=estimate_tokens(got.text))]
    assert cost_usd(provider.model, got.usage[0]) == 0


def test_demo_works_behind_the_router():
    got = collect(ProviderRouter([DemoProvider(delay_ms=0)]).stream(MESSAGES, system="", request_id="r"))
    assert got.started[0].provider == "demo" and got.started[0].model == "demo"
    assert got.text.startswith("This is the offline demo provider")
