"""ui.text.literal: user-written text shown inside Markdown is shown as typed."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from ui.text import literal

INLINE = set("\\`*_[]<>~&$:")


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


@given(st.text(alphabet=st.sampled_from(list("ab 1.)#>-+=|") + sorted(INLINE)), max_size=40))
def test_round_trips_and_leaves_no_inline_markup(text: str) -> None:
    out = literal(text)
    assert _unescape(out) == text  # only escapes were added
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
