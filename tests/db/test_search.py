"""Search over a user's conversations (core.search): titles, messages and answers, on SQLite (FTS5)
and PostgreSQL (tsvector + GIN), only ever the user's own (C1, C3)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlmodel import select

from core.conversations import delete_conversation, rename_conversation
from core.db import system_session, user_session
from core.deletion import delete_user
from core.search import SearchHit, make_snippet, query_words, search_conversations, search_statements
from models import AgentRun, Conversation
from models.schemas import RenameIn, SearchIn
from models.types import utcnow
from tests.factories import make_user


def add_turn(
    user_id: uuid.UUID, conversation_id: uuid.UUID, message: str, answer: str, *, minutes_ago: int = 0
) -> uuid.UUID:
    run = AgentRun(
        user_id=user_id,
        conversation_id=conversation_id,
        user_message=message,
        output=answer,
        status="ok",
        provider="demo",
        model="demo",
        created_at=utcnow() - timedelta(minutes=minutes_ago),
        request_id=uuid.uuid4().hex[:12],
    )
    with system_session() as s:  # finished runs: a user session only starts runs as pending
        s.add(run)
    return run.id


def set_run(run_id: uuid.UUID, **values: object) -> None:
    with system_session() as s:
        s.execute(update(AgentRun).where(AgentRun.id == run_id).values(**values))  # type: ignore[arg-type]


def add_conversation(user_id: uuid.UUID, title: str = "New conversation") -> uuid.UUID:
    conv = Conversation(user_id=user_id, title=title, agent="general")
    with user_session(user_id) as s:
        s.add(conv)
    return conv.id


def find(user_id: uuid.UUID, query: str) -> list[SearchHit]:
    return search_conversations(user_id=user_id, query=SearchIn(query=query)).hits


@pytest.fixture
def alice(any_db_url: str) -> uuid.UUID:
    return make_user()


def test_finds_a_word_of_an_old_answer_and_names_its_run(alice):
    conv = add_conversation(alice, "Quarter planning")
    old = add_turn(alice, conv, "How do we hire?", "Hire a staff engineer for the zeppelin migration first.",
                   minutes_ago=60 * 24 * 30)
    add_turn(alice, conv, "And then?", "Then review the budget.")
    (hit,) = find(alice, "zeppelin")
    assert (hit.run_id, hit.conversation_id, hit.conversation_title) == (old, conv, "Quarter planning")
    assert hit.matched_in == "answer"
    assert [p.text for p in hit.snippet if p.matched] == ["zeppelin"]
    assert "".join(p.text for p in hit.snippet) == "Hire a staff engineer for the zeppelin migration first."


def test_finds_messages_titles_and_other_forms_of_a_word(alice):
    conv = add_conversation(alice, "Roadmap for the kraken launch")
    run = add_turn(alice, conv, "We keep planning the kraken rollout", "Ship it in slices.")
    hits = find(alice, "kraken")
    assert [(h.matched_in, h.run_id) for h in hits] == [("title", None), ("message", run)]
    # stemming: "plans" finds "planning"; letter case does not matter
    assert [h.run_id for h in find(alice, "PLANS")] == [run]


def test_every_word_must_match(alice):
    conv = add_conversation(alice)
    both = add_turn(alice, conv, "walrus budget", "tusks")
    add_turn(alice, conv, "walrus only", "nothing else")
    assert [h.run_id for h in find(alice, "walrus tusks")] == [both]
    assert len(find(alice, "walrus")) == 2


def test_newest_first_and_a_limit_with_more(alice):
    conv = add_conversation(alice)
    ids = [add_turn(alice, conv, f"ocelot {i}", "answer", minutes_ago=10 - i) for i in range(5)]
    results = search_conversations(user_id=alice, query=SearchIn(query="ocelot"), limit=3)
    assert [h.run_id for h in results.hits] == ids[::-1][:3]
    assert results.more is True
    assert search_conversations(user_id=alice, query=SearchIn(query="ocelot"), limit=5).more is False


def test_text_that_looks_like_query_syntax_is_just_words(alice):
    conv = add_conversation(alice)
    run = add_turn(alice, conv, 'use NEAR "quoted" near(x) col:umn * -minus', "fine")
    for query in ['"quoted"', "NEAR", "near(x)", "col:umn", "-minus", "umn*", "NEAR(quoted minus)"]:
        assert [h.run_id for h in find(alice, query)] == [run], query


def test_an_edited_turn_is_found_once_in_its_latest_version(alice):
    conv = add_conversation(alice)
    old = add_turn(alice, conv, "platypus question", "first answer", minutes_ago=5)
    new = add_turn(alice, conv, "platypus question", "second answer")
    set_run(old, superseded_by=new)
    assert [h.run_id for h in find(alice, "platypus")] == [new]


def test_the_index_follows_updates_and_deletes(alice):
    conv = add_conversation(alice, "Before rename")
    run = add_turn(alice, conv, "question", "")
    set_run(run, output="the narwhal plan")  # the answer arrives after the run was created (a stream)
    assert [h.run_id for h in find(alice, "narwhal")] == [run]
    rename_conversation(user_id=alice, data=RenameIn(conversation_id=conv, title="Axolotl ideas"))
    assert [h.matched_in for h in find(alice, "axolotl")] == ["title"]
    assert find(alice, "before rename") == []
    delete_conversation(user_id=alice, conversation_id=conv)
    assert find(alice, "narwhal") == [] and find(alice, "axolotl") == []


def test_another_users_text_is_never_found(alice):
    bob = make_user()
    mine = add_turn(alice, add_conversation(alice, "alpaca notes"), "alpaca", "alpaca answer")
    add_turn(bob, add_conversation(bob, "alpaca secrets"), "alpaca of bob", "bob's alpaca answer")
    hits = find(alice, "alpaca")
    assert {h.run_id for h in hits if h.run_id} == {mine}
    assert all("bob" not in "".join(p.text for p in h.snippet) for h in hits)
    assert [h.conversation_title for h in hits if h.matched_in == "title"] == ["alpaca notes"]
    carol = make_user()
    assert find(carol, "alpaca") == []


def test_deleting_a_user_removes_their_search_entries(alice):
    add_turn(alice, add_conversation(alice, "quokka title"), "quokka", "quokka answer")
    bob = make_user()
    add_turn(bob, add_conversation(bob), "quokka too", "x")
    delete_user(user_id=alice)
    assert find(alice, "quokka") == []
    assert len(find(bob, "quokka")) == 1
    with system_session() as s:
        assert s.exec(select(AgentRun).where(AgentRun.user_id == alice)).all() == []


def test_sqlite_fts_tables_hold_no_row_of_a_deleted_user(sqlite_url):
    alice = make_user()
    add_turn(alice, add_conversation(alice, "dugong title"), "dugong", "dugong answer")
    delete_user(user_id=alice)
    with system_session() as s:
        for fts in ("agent_runs_fts", "conversations_fts"):
            assert s.execute(text(f"SELECT count(*) FROM {fts} WHERE {fts} MATCH 'dugong'")).scalar_one() == 0
            # the index agrees with its content table (a row left behind would fail the check)
            s.execute(text(f"INSERT INTO {fts}({fts}, rank) VALUES ('integrity-check', 1)"))


@pytest.mark.parametrize(
    ("source", "terms", "expected"),
    [
        ("short text with kiwi", ("kiwi",), [("short text with ", False), ("kiwi", True)]),
        ("Kiwis and KIWI", ("kiwi",), [("Kiwis", True), (" and ", False), ("KIWI", True)]),
        ("line one\n\n  kiwi", ("kiwi",), [("line one ", False), ("kiwi", True)]),
        ("no match at all", ("kiwi",), [("no match at all", False)]),
        ("xkiwi is not a word start", ("kiwi",), [("xkiwi is not a word start", False)]),
    ],
)
def test_snippet_parts(source, terms, expected):
    assert [(p.text, p.matched) for p in make_snippet(source, terms)] == expected


def test_snippet_is_a_window_around_the_first_match():
    source = " ".join(f"w{i}" for i in range(200)) + " mango " + " ".join(f"v{i}" for i in range(200))
    parts = make_snippet(source, ("mango",), width=120)
    shown = "".join(p.text for p in parts)
    assert shown.startswith("…") and shown.endswith(" …")
    assert [p.text for p in parts if p.matched] == ["mango"]
    assert 60 <= len(shown) <= 125
    assert shown.index("mango") >= 40  # context before the word is kept


def test_rls_alone_hides_another_users_text(pg_url):
    """PostgreSQL: acting as Alice, the search statements asked for Bob's rows find nothing (row-level
    security), although the rows match (the table owner finds them)."""
    alice, bob = make_user(), make_user()
    add_turn(bob, add_conversation(bob, "meerkat plans"), "meerkat", "meerkat answer")
    titles, turns = search_statements("postgresql")
    params = {"uid": bob, "q": query_words(("meerkat",), "postgresql"), "n": 10}
    with user_session(alice) as s:
        assert s.execute(titles, params).all() == []
        assert s.execute(turns, params).all() == []
    with system_session() as s:
        assert len(s.execute(turns, params).all()) == 1
