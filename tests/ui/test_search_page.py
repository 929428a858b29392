"""AppTest of pages/search.py through the page router: the box, results as data, the links into the
chat, human messages for bad input, and only the user's own conversations (C1)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

from core.db import system_session, user_session
from models import AgentRun, Conversation
from tests.factories import make_user
from ui.text import literal

PAGE = "pages/search.py"


def conversation_with_turn(user_id: uuid.UUID, title: str, message: str, answer: str) -> tuple[uuid.UUID, uuid.UUID]:
    conv = Conversation(user_id=user_id, title=title, agent="general")
    with user_session(user_id) as s:
        s.add(conv)
    run = AgentRun(user_id=user_id, conversation_id=conv.id, user_message=message, output=answer, status="ok",
                   provider="demo", model="demo", request_id="r1")
    with system_session() as s:
        s.add(run)
    return conv.id, run.id


def links(at: Any) -> list[tuple[str, dict[str, list[str]]]]:
    """Each page link of the main area: (label, query parameters)."""
    out = []
    for element in at.main.get("page_link"):
        proto = element.proto
        out.append((proto.label, parse_qs(proto.query_string)))
    return out


def search(at: Any, text: str) -> Any:
    at.text_input(key="search_query").input(text).run()
    assert not at.exception
    return at


def test_search_page_is_listed_and_starts_with_an_empty_box(app):
    at = app(PAGE)
    assert not at.exception
    assert [t.value for t in at.title] == ["Search"]
    assert at.text_input(key="search_query").value == ""
    assert links(at) == []


def test_a_word_of_an_answer_finds_the_turn_and_links_to_it(app):
    at = app(PAGE)
    conv, run = conversation_with_turn(at.advisor_user.id, "Hiring [plan](http://x)", "Who first?",
                                       "Hire a **wombat** wrangler <img src=x> before the SRE.")
    search(at, "wombat")
    ((label, params),) = links(at)
    assert label == literal("Hiring [plan](http://x)") == r"Hiring \[plan\](http\:\/\/x)"  # as typed, no link
    assert params == {"conversation": [str(conv)], "run": [str(run)]}
    (snippet,) = [m.value for m in at.main.markdown if "wombat" in m.value]
    # the stored text as typed (its ** and <img> escaped), the matched word in bold
    assert snippet == r"Hire a \*\***wombat**\*\* wrangler \<img src=x\> before the SRE."
    assert any("Answer ·" in c.value for c in at.caption)


def test_a_title_match_links_to_the_conversation(app):
    at = app(PAGE)
    conv, _ = conversation_with_turn(at.advisor_user.id, "Capybara roadmap", "q", "a")
    search(at, "capybara")
    assert links(at) == [("Capybara roadmap", {"conversation": [str(conv)]})]


def test_bad_input_gets_a_human_message_and_nothing_found_says_so(app):
    at = app(PAGE)
    search(at, "!!!")
    assert [e.value for e in at.error] == ["Type a word to search for: letters or digits (at most 200 characters)."]
    search(at, "x" * 210)  # the box takes a little more than the limit: the message names it
    assert [e.value for e in at.error] == ["Use at most 200 characters."]
    search(at, "zebrafish")
    assert not at.error
    assert [i.value for i in at.info] == ["Nothing in your conversations matches all of these words."]


def test_another_users_conversations_are_not_found(app):
    bob = make_user()
    conversation_with_turn(bob, "Bob's gecko plan", "gecko", "gecko answer")
    at = app(PAGE)
    search(at, "gecko")
    assert links(at) == []
    assert "gecko" not in "".join(m.value for m in at.main.markdown)
