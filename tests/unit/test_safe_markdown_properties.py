"""Property tests of core.safe_markdown: whatever Markdown an answer holds, the Markdown it is shown
as loads no image from a host that is not allowed and has no link that is not http(s) or mailto.

The check is independent of the module under test: the written Markdown is parsed again with
markdown-it in the dialect Streamlit's frontend reads (CommonMark, GFM tables, strikethrough and
bare-URL links) and every image, link and raw HTML token in it is judged here with plain
``urllib.parse``. Rendering a second time (the output of the output) must pass the same check.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from core.safe_markdown import export_markdown, safe_markdown

ALLOWED = frozenset({"ok.example", "127.0.0.1:8765"})
MAX_DATA = 64
READER = MarkdownIt("commonmark", {"linkify": True}).enable(["table", "strikethrough", "linkify"])


def tokens(markdown: str) -> Iterator[Token]:
    """Every token of ``markdown``, inline ones included, in document order."""
    def walk(level: list[Token]) -> Iterator[Token]:
        for token in level:
            yield token
            yield from walk(token.children or [])

    return walk(READER.parse(markdown))


def image_may_load(src: str) -> bool:
    parts = urlsplit(src)
    scheme = parts.scheme.lower()
    if scheme == "data":
        head, _, payload = src.partition(",")
        return head.lower().startswith("data:image/") and len(payload) * 3 // 4 <= MAX_DATA
    if scheme not in ("http", "https") or "@" in parts.netloc:
        return False
    default = {"http": 80, "https": 443}[scheme]
    return parts.netloc.lower() in ALLOWED or (
        parts.port in (None, default) and (parts.hostname or "") in ALLOWED
    )


def problems(markdown: str, *, export: bool = False) -> list[str]:
    """Every image that would load from a host not allowed (in an export: every image), every link
    that is not http, https or mailto, and any raw HTML, in ``markdown`` as a browser would get it."""
    found = []
    for token in tokens(markdown):
        if token.type == "image":
            src = str(token.attrs["src"])
            if export or not image_may_load(src):
                found.append(f"image {src}")
        elif token.type == "link_open":
            href = str(token.attrs["href"])
            scheme = href.partition(":")[0].lower() if ":" in href else ""
            if scheme not in ("http", "https", "mailto") or href.startswith("//"):
                found.append(f"link {href}")
        elif token.type in ("html_inline", "html_block"):
            found.append(f"html {token.content}")
    return found


@contextmanager
def no_fallback() -> Iterator[None]:
    """Fails when safe_markdown had to show an answer as plain text (its own check refused what it
    wrote): the writer itself must produce safe Markdown, the check is only a last wall."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Collect(logging.WARNING)
    logger = logging.getLogger("advisor.safe_markdown")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not records, records[0].getMessage()


def render(text: str) -> str:
    return safe_markdown(text, allowed_image_hosts=ALLOWED, max_data_image_bytes=MAX_DATA)


# ------------------------------------------------------------------------------------------------
# generated Markdown
# ------------------------------------------------------------------------------------------------
HOSTS = ["ok.example", "OK.Example", "evil.example", "127.0.0.1:8765", "127.0.0.1:8766", "ok.example:444",
         "ok.example@evil.example", "evil.example\\@ok.example", "ok.example%2F@evil.example", "ok.example.",
         "xn--80ak6aa92e.com", "[::1]", "ok.example:80"]
SCHEMES = ["http", "https", "HTTP", "hTtPs", "ftp", "javascript", "data", "file", ""]
ODD_URLS = [
    "javascript:alert(1)", "JaVaScRiPt:alert(document.cookie)", "vbscript:msgbox", "data:text/html,<b>x</b>",
    "data:image/png;base64,iVBORw0KGgo=", "data:image/png;base64," + "A" * 400, "data:image/svg+xml,<svg/>",
    "file:///etc/passwd", "//evil.example/p.png", "/relative.png", "p.png", "&#106;avascript:alert(1)",
    "java\tscript:x", "https:evil.example/p.png", "https:/evil.example/x", "https:\\\\evil.example/x",
    "mailto:a@b.co", "MAILTO:x@evil.example", "https://evil.example/a b", "https://evil.example/(x)",
    "http://ok.example/p.png?d=<secret>", "http://evil.example/p.png \"title\"", "<http://evil.example/p>",
    "https://ok.example/a.png#frag",
]
words = st.sampled_from(["a", "word", "x y", "ok.example", "evil.example", "123", ""])
paths = st.text(alphabet="abc./?=&%#_-()[]", max_size=8)
urls = st.one_of(
    st.builds(lambda s, h, p: f"{s}://{h}/{p}" if s else f"//{h}/{p}", st.sampled_from(SCHEMES),
              st.sampled_from(HOSTS), paths),
    st.sampled_from(ODD_URLS),
)
syntax = st.sampled_from([
    "[", "]", "![", "](", ")", "(", "<", ">", "\\", "`", "``", "```", "~~~", "*", "**", "_", "~~", "$", "$$",
    ":red[", ":material/home:", ":smile:", "|", "---", "===", "\n", "\n\n", "> ", "- ", "+ ", "1. ", "2) ",
    "    ", "\t", "# ", "```mermaid\n", "&amp;", "&#91;", "&lt;img src=x&gt;", "!", " ", "[^1]", "[x]:",
    "<!--", "-->", "<div>", "</div>", "{", "}", "\"", "'", "http://", "www.", "@",
])


def inline_image(alt: str, url: str) -> str:
    return f"![{alt}]({url})"


fragments = st.one_of(
    syntax,
    words,
    urls,
    st.builds(inline_image, words, urls),
    st.builds(lambda a, u: f"![{a}](<{u}>)", words, urls),
    st.builds(lambda a, u: f"![{a}][r]\n\n[r]: {u}\n", words, urls),
    st.builds(lambda u: f"![r][]\n\n[r]: <{u}> \"t\"\n", urls),
    st.builds(lambda u: f"![r]\n\n[R]: {u}\n", urls),
    st.builds(lambda t, u: f"[{t}]({u})", words, urls),
    st.builds(lambda t, u: f"[{t}][l]\n\n[l]: {u}\n", words, urls),
    st.builds(lambda a, i, u: f"[![{a}]({i})]({u})", words, urls, urls),
    st.builds(lambda a, i, u: f"[x ![{a}]({i}) y][q]\n\n[q]: {u}\n", words, urls, urls),
    st.builds(lambda t, u: f"[[{t}]]({u})", words, urls),
    st.builds(lambda u: f"<{u}>", urls),
    st.builds(lambda u: f"<img src=\"{u}\">", urls),
    st.builds(lambda u: f"<img src={u} />", urls),
    st.builds(lambda t, u: f"<a href=\"{u}\">{t}</a>", words, urls),
    st.builds(lambda u: f"`{u}`", urls),
    st.builds(lambda u: f"```\n![x]({u})\n```\n", urls),
    st.builds(lambda u: f"~~~\n```\n![x]({u})\n~~~\n", urls),  # backticks inside a code block
    st.builds(lambda a, u: f"| a | b |\n| --- | --- |\n| `x|{a}` | ![i]({u}) |\n", words, urls),
    st.builds(lambda u: f"| a |\n| - |\n| `x\\|![i]({u})` |\n", urls),  # a "|" inside a cell's code
    st.builds(lambda a, u: f"- {a}\n  > ![q]({u})\n", words, urls),
)
documents = st.lists(fragments, max_size=14).map("".join)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_no_image_from_a_host_not_allowed_and_no_unsafe_link(text: str) -> None:
    with no_fallback():
        once = render(text)
    assert problems(once) == [], (text, once)
    twice = render(once)  # rendering the rendered answer again is as safe
    assert problems(twice) == [], (text, once, twice)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_an_export_embeds_no_image_at_all(text: str) -> None:
    with no_fallback():
        out = export_markdown(text)
    assert problems(out, export=True) == [], (text, out)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_at_all_is_safe(text: str) -> None:
    with no_fallback():
        out = render(text)
    assert problems(out) == [], (text, out)
