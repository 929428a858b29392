"""User-written text shown inside Markdown (button labels, headers, messages) as the literal text."""

from __future__ import annotations

from core.markdown_escape import literal_markdown


def literal(text: str) -> str:
    """``text`` with its Markdown-significant characters backslash-escaped: a conversation title
    such as ``Use **kwargs in [tests](x)`` is shown as typed, not as bold text and a link. A message
    of several lines keeps its line breaks and indentation (``core.markdown_escape``)."""
    return literal_markdown(text)


TYPING_ROOM = 20


def typing_limit(limit: int) -> int:
    """The ``max_chars`` of a box whose value may hold ``limit`` characters: a little more. Streamlit
    cuts a value at ``max_chars`` without a word (in the browser and again on the server), so a box
    cut at the limit itself would silently shorten what a person pasted (a password, a message);
    with room past it, the value reaches the check, whose message names the limit."""
    return limit + TYPING_ROOM
