"""A long conversation in a real browser: the chat's live area is a fragment that reruns alone on every
message, and draws turns from what the session holds (ui.chat_area). After 30 turns the page
draws the newest turns only, the earlier ones behind "Show N earlier turns" (what a turn costs the
page stays the same however long the conversation grows); once shown, every question and every
answer is on the page exactly once (no turn doubled by a fragment rerun, none dropped), the header
and the sidebar show the conversation's title and count, and a reload shows the same 30 turns from
the database.
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import Locator, expect

from tests.e2e.conftest import ProviderStub
from tests.e2e.helpers import BrowserSession

pytestmark = pytest.mark.e2e

PASSWORD = "correct-horse-42!"
TURNS = 30


@pytest.fixture(scope="module")
def app_extra_env() -> dict[str, str]:
    """More turns a minute than the default limit allows: this user types fast."""
    return {"ADVISOR_CHAT_TURNS_PER_MINUTE": "200"}


def sign_up(s: BrowserSession, email: str) -> None:
    s.sign_up(email, PASSWORD)
    expect(s.main.locator("h1", has_text="Chat")).to_be_visible()


def question(i: int) -> str:
    return f"Question number {i:02d}: what comes next?"


def answer(i: int) -> str:
    return f"Answer number {i:02d}, marker {uuid.uuid4().hex[:10]}."


def count_exact(messages: Locator, text: str) -> int:
    """How many chat messages' text paragraphs read exactly ``text``."""
    return int(messages.locator("[data-testid=stMarkdownContainer] p").evaluate_all(
        "(ps, t) => ps.filter(p => p.textContent.trim() === t).length", text))


def show_earlier(s: BrowserSession, sent: list[tuple[str, str]]) -> None:
    """The page draws the newest turns only: the first question is not in the page until the
    button above them is clicked."""
    messages = s.main.locator("[data-testid=stChatMessage]")
    expect(messages.filter(has_text=sent[-1][1])).to_have_count(1)
    assert count_exact(messages, sent[0][0]) == 0
    shown = messages.count() // 2
    assert 10 <= shown < len(sent), shown
    button = s.main.get_by_role("button", name=f"Show {len(sent) - shown} earlier turns")
    button.scroll_into_view_if_needed()
    s.shot("newest-turns")
    s.act(button.click)
    expect(button).to_have_count(0)


def assert_each_once(s: BrowserSession, sent: list[tuple[str, str]]) -> None:
    messages = s.main.locator("[data-testid=stChatMessage]")
    expect(messages).to_have_count(2 * len(sent))
    for q, a in sent:
        assert count_exact(messages, q) == 1, q
        assert count_exact(messages, a) == 1, a


def test_thirty_turns_each_message_shown_once(session: BrowserSession, stub: ProviderStub) -> None:
    s = session
    email = f"long-{uuid.uuid4().hex[:8]}@example.com"
    sign_up(s, email)
    box = s.page.locator("[data-testid=stChatInputTextArea]")
    messages = s.main.locator("[data-testid=stChatMessage]")
    sent: list[tuple[str, str]] = []

    def send(i: int) -> None:
        q, a = question(i), answer(i)
        stub.reply("*", {"text": a, "input_tokens": 50, "output_tokens": 9})
        box.fill(q)
        s.act(lambda: box.press("Enter"))
        expect(messages.filter(has_text=a)).to_have_count(1)
        sent.append((q, a))

    for i in range(1, TURNS + 1):
        send(i)
    show_earlier(s, sent)
    s.shot("thirty-turns")
    assert_each_once(s, sent)
    # a control on an earlier turn reruns the history alone: it draws the turns it had, not those
    # the live area shows meanwhile
    for i in range(TURNS + 1, TURNS + 4):
        send(i)
    first = messages.filter(has_text=sent[0][1])
    s.act(lambda: first.get_by_role("button", name="Markdown").click())
    dialog = s.page.get_by_role("dialog")
    expect(dialog.locator("code")).to_contain_text(sent[0][1])
    s.page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    assert_each_once(s, sent)
    # the header and the sidebar follow the turns without a page reload
    expect(s.main.get_by_role("heading", name=question(1))).to_be_visible()
    expect(s.main.get_by_text(f"· {len(sent)} turns")).to_be_visible()
    expect(s.sidebar.get_by_role("button").filter(has_text=question(1))).to_contain_text(f"· {len(sent)}")
    assert len(stub.requests()) == len(sent)

    # a reload reads the same turns from the database
    s.goto("/")  # still signed in: the session cookie
    show_earlier(s, sent)
    assert_each_once(s, sent)
