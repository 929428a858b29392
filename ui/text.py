"""User-written text shown inside Markdown (button labels, headers, messages) as the literal text."""

from __future__ import annotations

from core.markdown_escape import literal_markdown


def literal(text: str) -> str:
    """``text`` with its Markdown-significant characters backslash-escaped: a conversation title
    such as ``Use **kwargs in [tests](x)`` is shown as typed, not as bold text and a link. A message
    of several lines keeps its line breaks and indentation (``core.markdown_escape``)."""
    return literal_markdown(text)
