"""What chat users take for granted, in a real browser (issue 19): stop an answer while it streams,
edit the last message and send it again, regenerate the last answer, copy an answer as Markdown,
export the conversation as Markdown, delete a conversation after a confirmation. The runs are read
from the app's database as its owner, beside what the page shows.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from playwright.sync_api import expect

from tests.conftest import _pg_url
from tests.e2e.conftest import AppServer, ProviderStub
from tests.e2e.helpers import BrowserSession
from tests.e2e.test_long_conversation import sign_up

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def app_extra_env() -> dict[str, str]:
    return {"ADVISOR_CHAT_TURNS_PER_MINUTE": "200"}


def runs_of(server: AppServer, email: str) -> list[dict[str, Any]]:
    """The user's runs, oldest first, read as the database owner."""
    dsn = _pg_url(server.database).replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        cur = conn.execute(
            "SELECT r.id, r.user_message, r.output, r.status, r.error_code, r.superseded_by, r.input_tokens,"
            " r.conversation_id FROM agent_runs r JOIN users u ON u.id = r.user_id WHERE u.email = %s"
            " ORDER BY r.created_at", (email,))
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def conversations_of(server: AppServer, email: str) -> list[str]:
    dsn = _pg_url(server.database).replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        return [r[0] for r in conn.execute(
            "SELECT c.title FROM conversations c JOIN users u ON u.id = c.user_id WHERE u.email = %s", (email,))]


def send(s: BrowserSession, text: str) -> None:
    box = s.page.locator("[data-testid=stChatInputTextArea]")
    box.fill(text)
    s.act(lambda: box.press("Enter"))


def test_stop_a_slow_answer_keeps_the_partial_answer_and_the_next_message_answers(
    session: BrowserSession, stub: ProviderStub, app_server: AppServer
) -> None:
    s = session
    email = f"stop-{uuid.uuid4().hex[:8]}@example.com"
    sign_up(s, email)
    words = [f"slowword{i:02d}" for i in range(60)]
    stub.reply("*", {"text": " ".join(words), "input_tokens": 321, "chunk_delay_s": 0.25})  # ~15 s in all
    box = s.page.locator("[data-testid=stChatInputTextArea]")
    box.fill("Tell me everything, slowly.")
    box.press("Enter")
    expect(s.main.get_by_text("slowword03", exact=False)).to_be_visible()
    stop = s.page.locator("[data-testid=stChatInputStopButton]")
    expect(stop).to_be_visible()
    s.shot("streaming-with-stop")
    stop.click()
    s.wait_idle()
    [run] = runs_of(app_server, email)
    assert (run["status"], run["error_code"]) == ("interrupted", "cancelled")
    shown = run["output"].split()
    assert 3 <= len(shown) < len(words) and shown == words[: len(shown)]  # the partial answer, kept
    assert "slowword59" not in s.main.inner_text()

    stub.reply("*", {"text": "Right away, short and sweet."})
    send(s, "And now a short one?")
    expect(s.main.get_by_text("Right away, short and sweet.")).to_be_visible()
    # the stopped turn is read back with its partial answer and its cause
    expect(s.main.get_by_text("slowword02", exact=False)).to_be_visible()
    runs = runs_of(app_server, email)
    assert [(r["user_message"], r["status"]) for r in runs] == [
        ("Tell me everything, slowly.", "interrupted"), ("And now a short one?", "ok")]


def test_edit_regenerate_and_export_a_conversation(session: BrowserSession, stub: ProviderStub,
                                                   app_server: AppServer) -> None:
    s = session
    email = f"versions-{uuid.uuid4().hex[:8]}@example.com"
    sign_up(s, email)
    stub.reply("*", {"text": "Start with **one** Kafka topic.", "input_tokens": 120})
    send(s, "Should we adopt Kafka?")
    expect(s.main.get_by_text("Start with one Kafka topic.")).to_be_visible()
    stub.reply("*", {"text": "It costs about 400 dollars.", "input_tokens": 150})
    send(s, "What would it cost pre month?")
    expect(s.main.get_by_text("It costs about 400 dollars.")).to_be_visible()

    # edit the last message (a typo) and send it again
    s.act(lambda: s.main.get_by_role("button", name="Edit").click())
    editor = s.main.get_by_label("Edit your message")
    expect(editor).to_have_value("What would it cost pre month?")
    editor.fill("What would it cost per month?")
    stub.reply("*", {"text": "About 400 dollars per month.", "input_tokens": 150})
    s.act(lambda: s.main.get_by_role("button", name="Send edited message").click())
    expect(s.main.get_by_text("About 400 dollars per month.")).to_be_visible()
    expect(s.main.get_by_text("What would it cost per month?", exact=True)).to_be_visible()

    # regenerate the last answer
    stub.reply("*", {"text": "Roughly 380 dollars per month, with three brokers.", "input_tokens": 150})
    s.act(lambda: s.main.get_by_role("button", name="Regenerate").click())
    expect(s.main.get_by_text("Roughly 380 dollars per month, with three brokers.")).to_be_visible()
    earlier = s.main.locator("[data-testid=stExpander]").filter(has_text="Earlier versions (2)")
    expect(earlier).to_have_count(1)
    expect(s.main.get_by_text("About 400 dollars per month.")).not_to_be_visible()  # inside the closed expander
    earlier.locator("summary").click()  # opening an expander does not rerun the app
    expect(earlier.get_by_text("About 400 dollars per month.")).to_be_visible()
    expect(earlier.get_by_text("It costs about 400 dollars.")).to_be_visible()
    s.shot("earlier-versions")

    runs = runs_of(app_server, email)
    assert [(r["user_message"], r["output"]) for r in runs] == [
        ("Should we adopt Kafka?", "Start with **one** Kafka topic."),
        ("What would it cost pre month?", "It costs about 400 dollars."),
        ("What would it cost per month?", "About 400 dollars per month."),
        ("What would it cost per month?", "Roughly 380 dollars per month, with three brokers."),
    ]
    assert [r["superseded_by"] for r in runs] == [None, runs[2]["id"], runs[3]["id"], None]
    # the model was sent only the latest versions as history
    last_request = stub.requests()[-1]
    sent = [m["content"] for m in last_request["body"]["messages"] if m["role"] != "system"]
    assert sent == ["Should we adopt Kafka?", "Start with **one** Kafka topic.", "What would it cost per month?"]

    # copy an answer as Markdown: a dialog with the answer's Markdown in a code block (its copy button)
    first = s.main.locator("[data-testid=stChatMessage]").filter(has_text="Start with one Kafka topic.")
    s.act(lambda: first.get_by_role("button", name="Markdown").click())
    dialog = s.page.get_by_role("dialog")
    expect(dialog.locator("code")).to_contain_text("Start with **one** Kafka topic.")
    s.shot("answer-as-markdown")
    s.page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)

    # export the conversation as Markdown
    with s.page.expect_download() as info:
        s.main.get_by_role("button", name="Export").click()
    download = info.value
    assert download.suggested_filename.startswith("should-we-adopt-kafka-")
    assert download.suggested_filename.endswith(".md")
    text = download.path().read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# Should we adopt Kafka?"
    assert "- Advisor mode: General advisor" in lines
    assert "- Turns: 2 (and 2 earlier versions)" in lines
    assert "Start with **one** Kafka topic." in lines  # an answer's Markdown kept as Markdown
    assert "> What would it cost per month?" in lines
    assert "### Turn 2, earlier version 1 (replaced)" in lines and "### Turn 2, earlier version 2 (replaced)" in lines
    assert lines.index("About 400 dollars per month.") < lines.index("## Turn 2") < lines.index(
        "Roughly 380 dollars per month, with three brokers.")
    assert any(line.startswith("**Advisor** · openai · gpt-4o-mini · ") for line in lines)


def test_delete_a_conversation_after_confirming(session: BrowserSession, stub: ProviderStub,
                                                app_server: AppServer) -> None:
    s = session
    email = f"delete-{uuid.uuid4().hex[:8]}@example.com"
    sign_up(s, email)
    stub.reply("*", {"text": "Keep this one.", "input_tokens": 10})
    send(s, "A conversation to keep")
    expect(s.main.get_by_text("Keep this one.")).to_be_visible()
    s.sidebar.get_by_role("button", name="New conversation").click()  # a popover: no rerun
    s.act(lambda: s.page.get_by_role("button", name="Start", exact=True).click())  # in the popover
    stub.reply("*", {"text": "Delete me soon.", "input_tokens": 10})
    send(s, "A conversation to delete")
    expect(s.main.get_by_text("Delete me soon.")).to_be_visible()
    assert sorted(conversations_of(app_server, email)) == ["A conversation to delete", "A conversation to keep"]

    s.main.get_by_role("button", name="Delete", exact=True).click()  # opens the confirmation (no rerun)
    expect(s.page.get_by_text("This cannot be undone")).to_be_visible()
    assert len(conversations_of(app_server, email)) == 2  # nothing deleted before the confirmation
    s.act(lambda: s.page.get_by_role("button", name="Delete conversation").click())
    expect(s.main.get_by_text("Keep this one.")).to_be_visible()  # the remaining conversation opens
    expect(s.sidebar.get_by_role("button").filter(has_text="A conversation to delete")).to_have_count(0)
    assert conversations_of(app_server, email) == ["A conversation to keep"]
    assert [r["user_message"] for r in runs_of(app_server, email)] == ["A conversation to keep"]
