"""ui.text.literal: user-written text shown inside Markdown is shown as typed."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ui.text import literal

INLINE = set("\\`*_[]<>~&$:")
NBSP = "\u00a0"


def _unescape(text: str) -> str:
    """``text`` without its escapes; indentation (kept as no-break spaces) back to spaces."""
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL).replace(NBSP, " ")


@given(st.text(alphabet=st.sampled_from(list("ab 1.)#>-+=|") + sorted(INLINE)), max_size=40))
def test_round_trips_and_leaves_no_inline_markup(text: str) -> None:
    out = literal(text)
    # only escapes were added; a line of white space alone shows nothing and is left out
    assert _unescape(out) == (text if text.strip() else "")
    i = 0
    while i < len(out):  # every special character is escaped
        if out[i] == "\\":
            i += 2
            continue
        assert out[i] not in INLINE, (text, out)
        i += 1


def test_examples() -> None:
    assert literal("Use **kwargs in [tests](x)") == r"Use \*\*kwargs in \[tests\](x)"
    assert literal("# not a heading") == r"\# not a heading"
    assert literal("1. not a list") == r"1\. not a list"
    assert literal("- not a list") == r"\- not a list"
    assert literal(":red[not red] $not latex$") == r"\:red\[not red\] \$not latex\$"
    assert literal("plain text, nothing to escape?") == "plain text, nothing to escape?"


def test_a_user_message_shows_its_characters_and_lines() -> None:
    """What a user typed is shown as typed: no bold, no colour, no link; line breaks kept."""
    assert literal("**bold** :red[x] [l](http://h)") == r"\*\*bold\*\* \:red\[x\] \[l\](http\:\/\/h)"
    assert literal("line one\nline two\n\n  - indented") == f"line one\\\nline two\n\n{NBSP * 2}\\- indented"
    assert literal(":material/home: ![x](http://h/p.png)") == r"\:material\/home\: \!\[x\](http\:\/\/h\/p.png)"
