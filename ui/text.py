"""User-written text shown inside Markdown (button labels, headers, messages) as the literal text."""

from __future__ import annotations

from collections.abc import Iterable

from core.markdown_escape import escape_inline, literal_markdown


def literal(text: str) -> str:
    """``text`` with its Markdown-significant characters backslash-escaped: a conversation title
    such as ``Use **kwargs in [tests](x)`` is shown as typed, not as bold text and a link. A message
    of several lines keeps its line breaks and indentation (``core.markdown_escape``)."""
    return literal_markdown(text)


def literal_highlighted(parts: Iterable[tuple[str, bool]]) -> str:
    """One line of user or model text, as typed, with the parts marked True shown in bold (a search
    result's matched words). Each part is escaped like ``literal``; the bold markers are the only
    Markdown in the result. A marked part is a whole word, so the markers always pair up."""
    out = []
    for index, (text, marked) in enumerate(parts):
        escaped = escape_inline(text, line_start=index == 0)
        out.append(f"**{escaped}**" if marked and text.strip() else escaped)
    return "".join(out)


TYPING_ROOM = 20


def typing_limit(limit: int) -> int:
    """The ``max_chars`` of a box whose value may hold ``limit`` characters: a little more. Streamlit
    cuts a value at ``max_chars`` without a word (in the browser and again on the server), so a box
    cut at the limit itself would silently shorten what a person pasted (a password, a message);
    with room past it, the value reaches the check, whose message names the limit."""
    return limit + TYPING_ROOM
