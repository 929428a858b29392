"""Text that must be shown exactly as written when it is placed inside Markdown.

``escape_inline`` backslash-escapes every character that could start a Markdown construct in
CommonMark, GitHub-flavoured Markdown or Streamlit's extensions, so the text can never become a
link, an image, HTML, emphasis, code, a table, LaTeX or a ``:color[...]`` / ``:material/icon:``
directive. ``literal_markdown`` does the same for a whole message of several lines and keeps its
line breaks and indentation. Both are pure functions over characters: no parser is needed, because
nothing in the result is left for a parser to interpret.
"""

from __future__ import annotations

# What starts an inline construct anywhere in a line: the escape itself (\), code (`), emphasis
# (* _), strikethrough (~), links, images and footnotes ([ ] ^ !; a "!" right before a link would
# make it an image), HTML and autolinks (< >), entities (&), LaTeX ($), table cells (|), and
# Streamlit's :emoji:, :color[text] and :material/icon: directives (: /). Streamlit turns
# ":material/" into an icon before parsing, so "/" is escaped too.
INLINE_SPECIAL = frozenset("\\`*_~[]^!<>&$|:/")
# What starts a block when it opens a line: a heading, a list item, a setext underline (a quote's
# ">" is escaped everywhere already).
BLOCK_START = frozenset("#+-=")
# Indentation is kept as no-break spaces: leading spaces would be dropped by Markdown (or, four of
# them, turn the line into a code block).
NBSP = "\u00a0"
TAB_WIDTH = 4


def _escape_line_start(escaped_rest: str, head: str) -> str:
    """``head`` (the raw start of a line) made inert when it would open a block."""
    if head and head[0] in BLOCK_START:
        return "\\" + escaped_rest
    digits = len(head) - len(head.lstrip("0123456789"))
    if digits > 0 and head[digits:digits + 1] in (".", ")"):  # "1. " / "1) " is a list item
        return escaped_rest[:digits] + "\\" + escaped_rest[digits:]
    return escaped_rest


def escape_inline(text: str, *, line_start: bool = False) -> str:
    """``text`` with every Markdown-significant character backslash-escaped; with ``line_start``,
    also what would open a block at the start of a line, and leading spaces or tabs kept as
    no-break spaces. ``text`` holds no line break (see ``literal_markdown`` for several lines)."""
    escaped = "".join("\\" + ch if ch in INLINE_SPECIAL else ch for ch in text)
    if not line_start:
        return escaped
    body = text.lstrip(" \t")
    indent = text[: len(text) - len(body)]
    lead = "".join(NBSP * (TAB_WIDTH if ch == "\t" else 1) for ch in indent)
    return lead + _escape_line_start(escaped[len(indent):], body)


def literal_markdown(text: str) -> str:
    """``text`` as Markdown that shows exactly these characters: every line break is kept (an empty
    line between paragraphs stays an empty line; several in a row show as one), and so is each
    line's indentation. Blank lines before the first and after the last visible line are left out,
    and so is a line of white space alone (no-break spaces too) at the start or end of a paragraph:
    it shows nothing, and a reader that trims paragraphs would leave the line break before it as a
    visible backslash."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for index in reversed(range(len(lines))):  # from the end: a run of such lines empties in turn
        if not lines[index].strip() and (index + 1 == len(lines) or not lines[index + 1]):
            lines[index] = ""
    for index in range(len(lines)):
        if not lines[index].strip() and (index == 0 or not lines[index - 1]):
            lines[index] = ""
    shown = [index for index, line in enumerate(lines) if line] or [0]
    lines = lines[shown[0]: shown[-1] + 1]
    out: list[str] = []
    for index, line in enumerate(lines):
        if not line:
            out.append("")
            continue
        rendered = escape_inline(line, line_start=True)
        last = index + 1 >= len(lines) or not lines[index + 1]
        # a backslash before the line break makes it a hard break; not before an empty line
        out.append(rendered if last else rendered + "\\")
    return "\n".join(out).strip("\n")
