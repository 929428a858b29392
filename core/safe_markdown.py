"""Model output as Markdown that cannot make the reader's browser contact any host.

An answer is parsed with markdown-it (CommonMark with GitHub's tables, strikethrough and bare-URL
links) and written out again construct by construct. Nothing of the answer reaches the page
unparsed: all of its text is escaped (``core.markdown_escape``), and only the constructs below are
written back as Markdown. The result is for ``st.markdown`` *without* ``unsafe_allow_html``.

The rule per construct:

- **Images** (inline ``![a](u)``, reference-style ``![a][r]`` with its definition, inside links) are
  not loaded. Each is shown as escaped text naming where it would come from, with its alternative
  text if it has one: ``[image: host.example/pixel.png?…]``, ``[image "chart": host.example/c.png]``.
  Exceptions: ``http(s)`` images on a host in ``allowed_image_hosts`` (``host`` for the default
  port, or ``host:port``), and ``data:`` PNG, JPEG, GIF or WebP images of at most
  ``max_data_image_bytes`` decoded bytes.
- **Links** (inline, reference-style, ``<https://…>`` autolinks and bare URLs) stay clickable when
  they are ``http``, ``https`` or ``mailto`` links whose host can be read unambiguously. The
  destination host is written beside the link, ``[docs](https://evil.example/x) (evil.example)``,
  unless the link's text already names that host. Any other link (``javascript:``, ``vbscript:``,
  ``data:``, ``file:``, relative, protocol-relative) is text: its label and its destination.
  (Streamlit's browser side also turns a bare ``https://…``, ``www.…`` or e-mail address left in
  text into a link; such a link's text is its destination.)
- **Raw HTML** (blocks and inline tags such as ``<img src=…>``) is text, shown as written.
- **Styling that Streamlit adds to Markdown** is not used: ``:red[…]`` colour and other
  directives, ``:material/icon:`` icons, emoji shortcodes and LaTeX (``$…$``, which also keeps
  prices such as "$5 to $10" as written) are escaped and shown as typed. Fenced code blocks are
  kept, but a ``mermaid`` block is shown as code, never drawn as a diagram (a diagram can load
  images).
- **Kept as Markdown**: paragraphs, line breaks, headings, emphasis, strong, strikethrough, inline
  code, code blocks, block quotes, lists, tables and thematic breaks.

Streamlit's browser side still turns ``->`` into an arrow, and ``:streamlit:`` (and, when the
answer has a shortcode inside code, emoji shortcodes) into pictures from inside its own bundle;
those change how text looks and contact no host.

As a last wall the written Markdown is parsed again and checked; if it held an image or link the
rules refuse, the whole answer is shown as plain text instead (and a warning is logged).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.token import Token

from core.link_rules import ImagePolicy, image_allowed, image_label, link_target
from core.markdown_escape import escape_inline, literal_markdown

log = logging.getLogger("advisor.safe_markdown")

# The answer's Markdown dialect: CommonMark plus what Streamlit's frontend adds (GFM tables,
# strikethrough, bare URLs turned into links). HTML is recognised so it can be shown as text.
PARSER = MarkdownIt("commonmark", {"linkify": True}).enable(["table", "strikethrough", "linkify"])
SHOWN_DESTINATION_CHARS = 80
SHOWN_ALT_CHARS = 80
ALIGN = {"text-align:left": ":---", "text-align:center": ":---:", "text-align:right": "---:"}


@dataclass
class _Node:
    token: Token
    children: list[_Node] = field(default_factory=list)


def _tree(tokens: Iterable[Token]) -> list[_Node]:
    """markdown-it's flat block token stream as a tree (open/close pairs become one node)."""
    root: list[_Node] = []
    stack: list[list[_Node]] = [root]
    for token in tokens:
        if token.nesting == 1:
            node = _Node(token)
            stack[-1].append(node)
            stack.append(node.children)
        elif token.nesting == -1:
            stack.pop()
        else:
            stack[-1].append(_Node(token))
    return root


def _plain(tokens: Iterable[Token]) -> str:
    """The visible text of inline tokens (an image counts with its alternative text)."""
    out: list[str] = []
    for token in tokens:
        if token.type in ("text", "code_inline", "html_inline"):
            out.append(token.content)
        elif token.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif token.type == "image":
            out.append(_plain(token.children or []))
    return "".join(out)


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _destination(url: str) -> str:
    """``url`` as a link destination: in angle brackets, ``&`` escaped so no entity is decoded."""
    return "<" + url.replace("&", "\\&") + ">"


def _code_span(content: str, *, in_table: bool) -> str:
    longest = run = 0
    for ch in content:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    if in_table:  # a "|" would end the table cell; GFM reads "\|" inside a cell's code as "|"
        content = content.replace("|", "\\|")
    pad = content.startswith("`") or content.endswith("`") or (
        content.startswith(" ") and content.endswith(" ") and content.strip(" ") != ""
    )
    return fence + (f" {content} " if pad else content) + fence


def _fence(content: str, info: str) -> str:
    longest = run = 0
    for ch in content:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    words = info.split()
    lang = words[0] if words else ""
    if not all(ch.isalnum() or ch in "_+-.#" for ch in lang):
        lang = ""
    word = ""
    for ch in lang:  # Streamlit draws a block whose language starts with the word "mermaid"
        if not (ch.isalnum() or ch == "_"):
            break
        word += ch
    if word.lower() == "mermaid":
        lang = ""
    body = content if content.endswith("\n") or not content else content + "\n"
    return f"{fence}{lang}\n{body}{fence}"


def _prefix(text: str, first: str, rest: str) -> str:
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines):
        lead = first if i == 0 else rest
        out.append(lead + line if line else lead.rstrip())
    return "\n".join(out)


@dataclass
class _Inline:
    """Where the inline writer is: at the start of a line, on a line that may not break, inside a
    table cell or a link."""

    line_start: bool = True
    one_line: bool = False
    in_table: bool = False
    in_link: bool = False


class _Writer:
    def __init__(self, policy: ImagePolicy, *, images_as_links: bool) -> None:
        self.policy = policy
        self.images_as_links = images_as_links

    # blocks ------------------------------------------------------------------------------------
    def document(self, text: str) -> str:
        return self.blocks(_tree(PARSER.parse(text)), tight=False)

    def blocks(self, nodes: list[_Node], *, tight: bool) -> str:
        parts = [self.block(node) for node in nodes]
        return ("\n" if tight else "\n\n").join(p for p in parts if p)

    def block(self, node: _Node) -> str:
        token = node.token
        kind = token.type
        if kind == "paragraph_open":
            return self.inline_of(node)
        if kind == "heading_open":
            content = self.inline_of(node, one_line=True)
            if content.endswith("#"):  # would be read as the heading's closing sequence
                content = content[:-1] + "\\#"
            return "#" * int(token.tag[1:]) + " " + content
        if kind in ("bullet_list_open", "ordered_list_open"):
            return self.list_block(node)
        if kind == "blockquote_open":
            return _prefix(self.blocks(node.children, tight=False), "> ", "> ")
        if kind in ("fence", "code_block"):
            return _fence(token.content, token.info if kind == "fence" else "")
        if kind == "hr":
            return "***"
        if kind == "table_open":
            return self.table(node)
        if kind == "inline":
            return self.inline(token.children or [], _Inline())
        if node.children:
            return self.blocks(node.children, tight=False)
        return literal_markdown(token.content)  # html_block, and anything not named above

    def inline_of(self, node: _Node, *, one_line: bool = False, in_table: bool = False) -> str:
        return "".join(
            self.inline(child.token.children or [], _Inline(one_line=one_line, in_table=in_table))
            for child in node.children
        )

    def list_block(self, node: _Node) -> str:
        token = node.token
        ordered = token.type == "ordered_list_open"
        start = int(token.attrs.get("start", 1)) if ordered else 0
        hidden = [c.token.hidden for item in node.children for c in item.children
                  if c.token.type == "paragraph_open"]
        tight = hidden[0] if hidden else True
        items = []
        for index, item in enumerate(node.children):
            marker = f"{start + index}{token.markup or '.'}" if ordered else (token.markup or "-")
            content = self.blocks(item.children, tight=tight)
            items.append(_prefix(content, marker + " ", " " * (len(marker) + 1)) if content else marker)
        return ("\n" if tight else "\n\n").join(items)

    def table(self, node: _Node) -> str:
        rows: list[list[str]] = []
        aligns: list[str] = []
        for section in node.children:
            for row in section.children:
                cells = []
                for cell in row.children:
                    if cell.token.type == "th_open":
                        aligns.append(ALIGN.get(str(cell.token.attrs.get("style", "")), "---"))
                    cells.append(self.inline_of(cell, one_line=True, in_table=True))
                rows.append(cells)
        if not rows:
            return ""
        lines = ["| " + " | ".join(cells) + " |" for cells in rows]
        lines.insert(1, "| " + " | ".join(aligns or ["---"] * len(rows[0])) + " |")
        return "\n".join(lines)

    # inline ------------------------------------------------------------------------------------
    def inline(self, tokens: list[Token], at: _Inline) -> str:
        out: list[str] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            kind = token.type
            if kind == "link_open":
                end = i + 1
                while end < len(tokens) and tokens[end].type != "link_close":
                    end += 1
                after = tokens[end + 1].content if end + 1 < len(tokens) and tokens[end + 1].type == "text" else ""
                out.append(self.link(token, tokens[i + 1:end], at, after=after))
                i = end + 1
                continue
            out.append(self.inline_one(token, at))
            i += 1
        return "".join(out)

    def inline_one(self, token: Token, at: _Inline) -> str:
        kind = token.type
        if kind in ("softbreak", "hardbreak"):
            if at.one_line:
                return " "
            at.line_start = True
            return "\n" if kind == "softbreak" else "\\\n"
        if kind in ("text", "html_inline"):
            return self.text(token.content, at)
        at.line_start = False
        if kind == "code_inline":
            return _code_span(token.content, in_table=at.in_table)
        if kind in ("em_open", "em_close"):
            return "*"
        if kind in ("strong_open", "strong_close"):
            return "**"
        if kind in ("s_open", "s_close"):
            return "~~"
        if kind == "image":
            return self.image(token, at)
        return self.text(token.content, at)

    def text(self, content: str, at: _Inline) -> str:
        """Escaped text; a line break inside it (raw HTML may span lines) starts a new line."""
        lines = content.split("\n")
        out = []
        for index, line in enumerate(lines):
            if index:
                out.append(" " if at.one_line else "\n")
                at.line_start = not at.one_line
            out.append(escape_inline(line, line_start=at.line_start))
            at.line_start = at.line_start and not line
        return "".join(out)

    def link(self, token: Token, inner: list[Token], at: _Inline, *, after: str = "") -> str:
        """A link by the rule; ``after`` is the text that follows it (which may already name the
        destination, as in an answer rendered a second time)."""
        href = str(token.attrs.get("href", ""))
        target = None if at.in_link else link_target(href)
        if target is None:  # the label as text, then where it pointed unless the label is the URL
            label = self.inline(inner, at)
            if not href or token.markup in ("autolink", "linkify"):
                return label
            return label + escape_inline(f" ({_shorten(href, SHOWN_DESTINATION_CHARS)})")
        at.line_start = False
        label = self.inline(inner, _Inline(False, at.one_line, at.in_table, in_link=True))
        text = _plain(inner)
        if not text.strip():
            label, text = escape_inline(href), href
        shown = f" ({target.shown})"
        suffix = "" if target.named_by(text) or after.startswith(shown) else escape_inline(shown)
        return f"[{label}]({_destination(target.href)}){suffix}"

    def image(self, token: Token, at: _Inline) -> str:
        src = str(token.attrs.get("src", ""))
        alt = _shorten(_plain(token.children or []).strip(), SHOWN_ALT_CHARS)
        if not self.images_as_links and image_allowed(src, self.policy):
            return f"![{escape_inline(alt)}]({_destination(src)})"
        where = image_label(src)
        label = escape_inline(f"[image \"{alt}\": {where}]" if alt else f"[image: {where}]")
        target = link_target(src) if self.images_as_links and not at.in_link else None
        if target is not None:
            return f"[{label}]({_destination(target.href)})"
        return label


def find_unsafe(markdown: str, policy: ImagePolicy, *, images_as_links: bool = False) -> list[str]:
    """What in ``markdown`` (parsed as the answer dialect) the rules would not let through: raw
    HTML, an image that may not load (with ``images_as_links``: any image), a link that may not be
    a link. Empty when it is safe to show."""
    problems: list[str] = []
    stack = list(reversed(PARSER.parse(markdown)))
    while stack:
        token = stack.pop()
        stack.extend(reversed(token.children or []))
        if token.type in ("html_block", "html_inline"):
            problems.append(f"raw HTML {token.content[:40]!r}")
        elif token.type == "image":
            src = str(token.attrs.get("src", ""))
            if images_as_links or not image_allowed(src, policy):
                problems.append(f"image {src[:80]!r}")
        elif token.type == "link_open":
            href = str(token.attrs.get("href", ""))
            if link_target(href) is None:
                problems.append(f"link {href[:80]!r}")
    return problems


def _render(text: str, policy: ImagePolicy, *, images_as_links: bool) -> str:
    written = _Writer(policy, images_as_links=images_as_links).document(text)
    problems = find_unsafe(written, policy, images_as_links=images_as_links)
    if problems:
        log.warning("safe_markdown: the written Markdown held %s; the answer is shown as plain text",
                    "; ".join(problems[:3]))
        return literal_markdown(text)
    return written


def image_policy(*, allowed_image_hosts: Iterable[str], max_data_image_bytes: int) -> ImagePolicy:
    return ImagePolicy(
        allowed_hosts=frozenset(h.strip().lower() for h in allowed_image_hosts if h.strip()),
        max_data_bytes=max_data_image_bytes,
    )


def safe_markdown(text: str, *, allowed_image_hosts: frozenset[str], max_data_image_bytes: int) -> str:
    """``text`` (model output) as Markdown to show with ``st.markdown``: by the rules above, no
    image loads unless its host is allowed, every link names where it goes, nothing styles."""
    policy = image_policy(allowed_image_hosts=allowed_image_hosts, max_data_image_bytes=max_data_image_bytes)
    return _render(text, policy, images_as_links=False)


def export_markdown(text: str) -> str:
    """``text`` (model output) for a Markdown file: the same rules, except that no image is ever
    embedded; an ``http(s)`` image becomes a text link ``[image: host/path](url)``."""
    return _render(text, ImagePolicy(), images_as_links=True)
