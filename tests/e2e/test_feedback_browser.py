"""Feedback in the browser: a thumbs up on an answer, and the figures of the prompt version that
answered change on the prompt preview page (Chromium, Streamlit server, PostgreSQL, provider stub)."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Locator, expect

from tests.e2e.conftest import ProviderStub
from tests.e2e.helpers import BrowserSession

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-42!"
ANSWER = "Hire a staff engineer for the platform before a second manager."


def _metric(s: BrowserSession, label: str) -> Locator:
    return s.main.locator("[data-testid=stMetric]").filter(has_text=label)


def test_thumbs_up_changes_the_prompt_versions_figures(session: BrowserSession, stub: ProviderStub) -> None:
    s = session
    s.sign_up(f"feedback-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()
    s.navigate("Profile & vibe")
    s.choose("Role", "CTO")
    s.click_button("Save profile")
    expect(s.main.get_by_text("Profile saved.")).to_be_visible()

    s.navigate("Prompt preview")  # no answer from this prompt yet
    expect(s.main.get_by_text("No answer has come from this exact prompt yet")).to_be_visible()

    stub.reply("*", {"text": ANSWER, "input_tokens": 400, "output_tokens": 20})
    s.navigate("Chat")
    box = s.page.locator("[data-testid=stChatInputTextArea]")
    box.fill("Who should we hire next?")
    s.act(lambda: box.press("Enter"))
    answer = s.main.locator("[data-testid=stChatMessage]").filter(has_text=ANSWER)
    expect(answer).to_have_count(1)

    s.navigate("Prompt preview")
    expect(_metric(s, "Runs")).to_contain_text("1")
    expect(_metric(s, "Thumbs up")).to_contain_text("0%")
    s.shot("prompt-version-before")

    s.navigate("Chat")
    thumbs = answer.locator("[class*=st-key-feedback_] button").filter(has_text="thumb_up")
    expect(thumbs).to_have_count(1)
    s.act(thumbs.click)
    expect(answer.get_by_role("button", name="Add a comment")).to_be_visible()  # rated: stored, redrawn
    s.shot("answer-rated")

    s.navigate("Prompt preview")
    expect(_metric(s, "Thumbs up")).to_contain_text("100%")
    expect(_metric(s, "Thumbs down")).to_contain_text("0%")
    expect(_metric(s, "Runs")).to_contain_text("1")
    s.shot("prompt-version-after")
