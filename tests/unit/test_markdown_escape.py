"""core.markdown_escape: text placed in Markdown shows exactly its characters, lines and indentation."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from core.markdown_escape import INLINE_SPECIAL, NBSP, escape_inline, literal_markdown

# Streamlit's frontend (GFM) links only addresses that start with a scheme, ``www.`` or look like
# e-mail: a bare ``a.ba`` stays text. markdown-it's fuzzy linkify would link it, so the reader here
# has fuzzy links off. ``www.`` and e-mail addresses in a typed message stay clickable links (text,
# never an image or a style); that is known and accepted.
READER = MarkdownIt("commonmark", {"linkify": True}).enable(["table", "strikethrough", "linkify"])
assert READER.linkify is not None  # linkify-it-py is installed with markdown-it-py[linkify]
READER.linkify.set({"fuzzy_link": False, "fuzzy_email": False})

ALPHABET = st.sampled_from(
    list("ab 1.)#>-+=|\t\n!\xa0") + sorted(INLINE_SPECIAL) + ["\n\n", "    ", "```", "~~~"]
)


ASCII_SPACE = " \t\x0b\x0c"


def expected(text: str) -> str:
    """What a reader should see: the text, with indentation as no-break spaces (a tab as four) and
    runs of empty lines shown as one paragraph break. Space at the end of a line, invisible either
    way, is not compared."""
    lines = []
    for line in text.split("\n"):
        body = line.lstrip(" \t")
        indent = line[: len(line) - len(body)]
        lines.append(indent.replace("\t", NBSP * 4).replace(" ", NBSP) + body)
    paragraphs = "\n".join(lines).replace("\0", "\ufffd").split("\n\n")  # Markdown shows NUL as U+FFFD
    return _trim("\n\n".join(p.strip("\n") for p in paragraphs if p.strip("\n")))


def _trim(text: str) -> str:
    """Space at the ends of lines dropped; so is any at the ends of a paragraph, where markdown-it
    (Python ``str.strip``) drops no-break spaces too, unlike CommonMark and Streamlit's frontend."""
    lines = "\n".join(line.strip(ASCII_SPACE) for line in text.split("\n"))
    return "\n\n".join(p.strip() for p in lines.split("\n\n") if p.strip())


def seen(markdown: str) -> str:
    """The text a reader gets from ``markdown``; fails on anything but plain paragraphs."""
    parts: list[str] = []
    for block in READER.parse(markdown):
        assert block.type in ("paragraph_open", "paragraph_close", "inline"), (block.type, markdown)
        for token in block.children or []:
            assert token.type in ("text", "hardbreak"), ("only text and line breaks", token.type, markdown)
            parts.append("\n" if token.type == "hardbreak" else token.content)
        if block.type == "paragraph_close":
            parts.append("\n\n")
    return _trim("".join(parts))


@settings(max_examples=300, deadline=None)
@given(st.lists(ALPHABET, max_size=30).map("".join))
def test_a_message_is_shown_as_typed(text: str) -> None:
    assert seen(literal_markdown(text)) == expected(text)


@given(st.text(max_size=40))
def test_any_text_is_one_run_of_plain_text(text: str) -> None:
    assert seen(literal_markdown(text)) == expected(text.replace("\r\n", "\n").replace("\r", "\n"))


def test_every_special_character_is_escaped() -> None:
    special = "".join(sorted(INLINE_SPECIAL))
    assert escape_inline(special) == "".join("\\" + ch for ch in special)
    assert escape_inline("- x", line_start=True) == "\\- x"
    assert escape_inline("- x") == "- x"  # inside a line a dash starts nothing
    assert escape_inline("12) x", line_start=True) == "12\\) x"
    assert escape_inline("\t  x", line_start=True) == NBSP * 6 + "x"


def test_a_blank_looking_line_at_a_paragraph_edge_leaves_no_backslash() -> None:
    # white space alone (a no-break space too) at the end or start of a paragraph shows nothing
    assert literal_markdown("0\n\xa0") == "0"
    assert literal_markdown("0\n    \n\n1") == "0\n\n\n1"
    assert literal_markdown("\xa0\n0") == "0"
    assert literal_markdown("0\n \n1") == "0\\\n\xa0\\\n1"  # inside a paragraph it stays a line


def test_line_breaks_and_paragraphs_are_kept() -> None:
    assert literal_markdown("first\nsecond\n\nthird") == "first\\\nsecond\n\nthird"
    assert literal_markdown("ends with a backslash \\\nnext") == "ends with a backslash \\\\\\\nnext"
    assert literal_markdown("a\r\nb") == "a\\\nb"
