"""User-written text shown inside Markdown (button labels, headers, messages) as the literal text."""

from __future__ import annotations

import re

# What starts an inline construct: emphasis (* _), code (`), links and images ([ ]), HTML and
# autolinks (< >), strikethrough (~), entities (&), the escape itself (\), LaTeX ($) and
# Streamlit's :emoji:, :material/icon: and :color[text] directives (:)
_INLINE = re.compile(r"([\\`*_\[\]<>~&$:])")
# what makes a block when it starts the text: a heading, a quote, a list item, a rule
_BLOCK_START = re.compile(r"^(\s*)([#>+\-=|]|\d+(?=[.)]))")


def literal(text: str) -> str:
    """``text`` with its Markdown-significant characters backslash-escaped: a conversation title
    such as ``Use **kwargs in [tests](x)`` is shown as typed, not as bold text and a link."""
    escaped = _INLINE.sub(r"\\\1", text)
    match = _BLOCK_START.match(escaped)
    if match is None:
        return escaped
    lead, marker = match.groups()
    if marker[0].isdigit():  # "1. ..." / "1) ...": escape the dot or parenthesis after the number
        end = match.end()
        return escaped[:end] + "\\" + escaped[end:]
    return lead + "\\" + escaped[len(lead):]
