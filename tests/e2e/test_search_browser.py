"""Search in the browser: a word from an old answer is found, and its result opens that conversation
in the chat, at that turn (Chromium, Streamlit server, PostgreSQL, provider stub)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ProviderStub
from tests.e2e.helpers import BrowserSession

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-42!"
OLD_ANSWER = "Book the quarterly offsite in Zanzibar and keep the agenda to three decisions."
NEW_ANSWER = "Cut the roadmap to two bets."


def send_chat(s: BrowserSession, text: str) -> None:
    box = s.page.locator("[data-testid=stChatInputTextArea]")
    box.fill(text)
    s.act(lambda: box.press("Enter"))


def sign_up(s: BrowserSession) -> None:
    s.sign_up(f"search-{uuid.uuid4().hex[:8]}@example.com", PASSWORD)
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()


def test_search_finds_a_word_from_an_old_answer_and_opens_it(session: BrowserSession, stub: ProviderStub) -> None:
    s = session
    page = s.page
    sign_up(s)

    # an old conversation whose answer holds the word ...
    stub.reply("*", {"text": OLD_ANSWER, "input_tokens": 50, "output_tokens": 20})
    send_chat(s, "Where should the leadership offsite be?")
    expect(s.main.locator("[data-testid=stChatMessage]").filter(has_text=OLD_ANSWER)).to_have_count(1)
    # ... then a newer conversation, which the chat opens by default
    s.sidebar.get_by_role("button", name="New conversation").click()  # opens the popover: no rerun
    s.click_button("Start")
    stub.reply("*", {"text": NEW_ANSWER, "input_tokens": 50, "output_tokens": 8})
    send_chat(s, "What should the roadmap hold?")
    expect(s.main.locator("[data-testid=stChatMessage]").filter(has_text=NEW_ANSWER)).to_have_count(1)
    expect(s.main.get_by_text(OLD_ANSWER)).to_have_count(0)
    s.shot("chat-newer-conversation")

    s.navigate("Search")
    box = s.main.get_by_role("textbox", name="Search your conversations")
    box.fill("zanzibar")
    s.act(lambda: box.press("Enter"))
    result = s.main.locator("[class*=st-key-search_hit_]").filter(has_text="Answer ·")
    expect(result).to_have_count(1)
    expect(result.locator("strong", has_text=re.compile("^Zanzibar$"))).to_be_visible()  # the word, in bold
    link = result.locator("[data-testid=stPageLink] a")
    expect(link).to_contain_text("Where should the leadership offsite be?")
    expect(link).to_have_attribute("href", re.compile(r"conversation=[0-9a-f-]{36}&run=[0-9a-f-]{36}"))
    s.shot("search-result")

    s.act(link.click)
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()
    opened = s.main.locator("[data-testid=stChatMessage]").filter(has_text=OLD_ANSWER)
    expect(opened).to_have_count(1)
    expect(opened).to_be_in_viewport()
    expect(s.main.get_by_text(NEW_ANSWER)).to_have_count(0)
    expect(s.main.get_by_text("Found by your search:")).to_be_visible()
    assert "run=" not in page.url  # the link's parameters are consumed: a later visit shows the chat as left
    s.shot("chat-opened-at-the-old-answer")
