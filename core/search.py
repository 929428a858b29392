"""Search a user's conversations: titles, messages and answers, with a snippet per result (C1, C3).

One box, every word must match (in any form: "planning" finds "plans"). PostgreSQL matches the
generated ``search_tsv`` columns against ``plainto_tsquery('english', …)``; SQLite matches its FTS5
tables (porter stemming). Both run inside ``user_session``: the query filters by the user, and on
PostgreSQL row-level security filters again, so another user's text is never found.

Results: conversations whose title matches, then turns whose message or answer matches, newest
first. Only the latest version of an edited or regenerated turn is searched (the chat shows only
that one). Each turn result carries a snippet: a window of its text around the first matching word,
as plain-text parts with the matched words marked, for the page to show as data.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from sqlalchemy import String, Text, TextualSelect, Uuid, bindparam, column, text

from core.db import get_engine, user_session
from models.schemas import SearchIn
from models.types import UTCDateTime

__all__ = [
    "MAX_RESULTS",
    "SearchHit",
    "SearchResults",
    "SnippetPart",
    "make_snippet",
    "query_words",
    "search_conversations",
    "search_statements",
]

MAX_RESULTS: Final = 20  # turns; titles: at most MAX_TITLE_RESULTS more
MAX_TITLE_RESULTS: Final = 5
SNIPPET_CHARS: Final = 220
SNIPPET_LEAD: Final = 70  # characters shown before the first matching word

MatchedIn = Literal["title", "message", "answer"]


@dataclass(frozen=True)
class SnippetPart:
    text: str
    matched: bool


@dataclass(frozen=True)
class SearchHit:
    conversation_id: uuid.UUID
    conversation_title: str
    run_id: uuid.UUID | None  # None: the conversation's title matched
    created_at: datetime
    matched_in: MatchedIn
    snippet: tuple[SnippetPart, ...]


@dataclass(frozen=True)
class SearchResults:
    hits: list[SearchHit]
    more: bool  # more turns matched than are shown: a narrower query finds them


def search_statements(dialect: str) -> tuple[TextualSelect, TextualSelect]:
    """(titles, turns) for this database; each reads ``:uid``, ``:q`` (``query_words``) and ``:n``."""
    if dialect == "postgresql":
        titles = """
            SELECT c.id, c.title, c.created_at FROM conversations c
            WHERE c.user_id = :uid AND c.search_tsv @@ plainto_tsquery('english', :q)
            ORDER BY c.created_at DESC, c.id DESC LIMIT :n"""
        turns = """
            SELECT r.id, r.conversation_id, c.title, r.created_at, r.user_message, r.output
            FROM agent_runs r JOIN conversations c ON c.id = r.conversation_id
            WHERE r.user_id = :uid AND r.superseded_by IS NULL
              AND r.search_tsv @@ plainto_tsquery('english', :q)
            ORDER BY r.created_at DESC, r.id DESC LIMIT :n"""
    else:
        titles = """
            SELECT c.id, c.title, c.created_at
            FROM conversations_fts f JOIN conversations c ON c.rowid = f.rowid
            WHERE conversations_fts MATCH :q AND c.user_id = :uid
            ORDER BY c.created_at DESC, c.id DESC LIMIT :n"""
        turns = """
            SELECT r.id, r.conversation_id, c.title, r.created_at, r.user_message, r.output
            FROM agent_runs_fts f JOIN agent_runs r ON r.rowid = f.rowid
            JOIN conversations c ON c.id = r.conversation_id
            WHERE agent_runs_fts MATCH :q AND r.user_id = :uid AND r.superseded_by IS NULL
            ORDER BY r.created_at DESC, r.id DESC LIMIT :n"""
    uid = bindparam("uid", type_=Uuid())
    return (
        text(titles).bindparams(uid).columns(
            column("id", Uuid()), column("title", String()), column("created_at", UTCDateTime())
        ),
        text(turns).bindparams(uid).columns(
            column("id", Uuid()), column("conversation_id", Uuid()), column("title", String()),
            column("created_at", UTCDateTime()), column("user_message", Text()), column("output", Text()),
        ),
    )


def query_words(terms: tuple[str, ...], dialect: str) -> str:
    """The terms as the database's query text: plain words for PostgreSQL (``plainto_tsquery`` ANDs
    them), each a quoted FTS5 string for SQLite (so no word is read as an operator)."""
    if dialect == "postgresql":
        return " ".join(terms)
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _word_pattern(terms: tuple[str, ...]) -> re.Pattern[str]:
    """Words that start with a term (the term itself and its longer forms), in any letter case."""
    alternatives = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})[^\W_]*", re.IGNORECASE)


def make_snippet(source: str, terms: tuple[str, ...], *, width: int = SNIPPET_CHARS) -> tuple[SnippetPart, ...]:
    """About ``width`` characters of ``source`` around its first word that starts with a term, in
    parts, the matching words marked; "…" where the text was cut. Whitespace runs (line breaks too)
    become one space. With no such word (stemming matched another form), the text's beginning."""
    flat = " ".join(source.split())
    pattern = _word_pattern(terms) if terms else None
    first = pattern.search(flat) if pattern else None
    start = 0
    if first is not None and first.start() > SNIPPET_LEAD:
        start = flat.rfind(" ", 0, first.start() - SNIPPET_LEAD) + 1  # begin at a word
    end = min(len(flat), start + width)
    if end < len(flat):
        cut = flat.rfind(" ", start, end)
        end = cut if cut > start else end
    window = flat[start:end]
    parts: list[SnippetPart] = [SnippetPart("…", False)] if start > 0 else []
    at = 0
    for match in pattern.finditer(window) if pattern else ():
        if match.start() > at:
            parts.append(SnippetPart(window[at:match.start()], False))
        parts.append(SnippetPart(match.group(0), True))
        at = match.end()
    if at < len(window):
        parts.append(SnippetPart(window[at:], False))
    if end < len(flat):
        parts.append(SnippetPart(" …", False))
    return tuple(parts)


def _turn_hit(row: tuple[object, ...], terms: tuple[str, ...]) -> SearchHit:
    run_id, conversation_id, title, created_at, message, output = row
    message_text, output_text = str(message or ""), str(output or "")
    pattern = _word_pattern(terms)
    # the message when a word of it matches as typed; else the answer (which then matched, or
    # matched through another form of a word)
    matched_in: MatchedIn = "message" if pattern.search(message_text) else "answer"
    if matched_in == "answer" and not output_text:
        matched_in = "message"
    source = message_text if matched_in == "message" else output_text
    return SearchHit(
        conversation_id=conversation_id,  # type: ignore[arg-type]
        conversation_title=str(title),
        run_id=run_id,  # type: ignore[arg-type]
        created_at=created_at,  # type: ignore[arg-type]
        matched_in=matched_in,
        snippet=make_snippet(source, terms),
    )


def search_conversations(*, user_id: uuid.UUID, query: SearchIn, limit: int = MAX_RESULTS) -> SearchResults:
    """The user's conversations whose title matches ``query``, then their turns whose message or
    answer matches (latest versions only), newest first; at most ``limit`` turns."""
    terms = query.terms
    dialect = get_engine().dialect.name
    words = query_words(terms, dialect)
    titles_sql, turns_sql = search_statements(dialect)
    with user_session(user_id) as s:
        titles = s.execute(titles_sql, {"uid": user_id, "q": words, "n": MAX_TITLE_RESULTS}).all()
        turns = s.execute(turns_sql, {"uid": user_id, "q": words, "n": limit + 1}).all()
    hits = [
        SearchHit(
            conversation_id=row[0],
            conversation_title=row[1],
            run_id=None,
            created_at=row[2],
            matched_in="title",
            snippet=make_snippet(row[1], terms),
        )
        for row in titles
    ]
    hits += [_turn_hit(tuple(row), terms) for row in turns[:limit]]
    return SearchResults(hits=hits, more=len(turns) > limit)
