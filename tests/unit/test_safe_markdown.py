"""core.safe_markdown by example: one test per construct of its rule (issue #20), each checked on
what a reader would get (the written Markdown parsed again) and, where the form matters, on the
exact Markdown written."""

from __future__ import annotations

import base64

import pytest

from core.link_rules import ImagePolicy
from core.safe_markdown import export_markdown, find_unsafe, safe_markdown
from core.settings import SettingsError, get_settings
from tests.unit.test_safe_markdown_properties import READER, no_fallback, problems, tokens

ALLOWED = frozenset({"ok.example", "127.0.0.1:8765"})


def render(text: str, *, max_data: int = 100) -> str:
    with no_fallback():
        return safe_markdown(text, allowed_image_hosts=ALLOWED, max_data_image_bytes=max_data)


def visible(markdown: str) -> str:
    """The text a reader sees (links' text included, their destinations not)."""
    parts = []
    for block in READER.parse(markdown):
        for token in block.children or []:
            if token.type in ("text", "code_inline"):
                parts.append(token.content)
            elif token.type in ("softbreak", "hardbreak"):
                parts.append("\n")
        if block.type == "paragraph_close":
            parts.append("\n\n")
    return "".join(parts).strip()


def images(markdown: str) -> list[str]:
    return [str(t.attrs["src"]) for t in tokens(markdown) if t.type == "image"]


def links(markdown: str) -> list[str]:
    return [str(t.attrs["href"]) for t in tokens(markdown) if t.type == "link_open"]


def png(size: int) -> str:
    return "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"\0" * (size - 4)).decode()


# -- images ---------------------------------------------------------------------------------------
def test_an_inline_image_is_shown_as_text_naming_its_host() -> None:
    out = render("Done. ![x](http://host.example/pixel.png?d=the-question)")
    assert images(out) == [] and links(out) == []
    assert visible(out) == 'Done. [image "x": host.example/pixel.png?…]'
    assert render("![](https://host.example/a/b.png)") == r"\[image\: host.example\/a\/b.png\]"


def test_a_reference_style_image_is_shown_as_text() -> None:
    for text in ("![x][r]\n\n[r]: http://evil.example/q.png", "![r][]\n\n[r]: <http://evil.example/q.png> \"t\"",
                 "![R]\n\n[r]: http://evil.example/q.png"):
        out = render(text)
        assert images(out) == [] and "evil.example/q.png" in visible(out), text


def test_an_image_inside_a_link_is_text_and_the_link_stays() -> None:
    out = render("[![x](http://evil.example/i.png)](https://docs.example/page)")
    assert images(out) == [] and links(out) == ["https://docs.example/page"]
    assert visible(out) == '[image "x": evil.example/i.png] (docs.example)'


def test_raw_html_is_shown_as_written_never_as_html() -> None:
    out = render('<img src="http://evil.example/x.png">\n\ntext <img src=http://evil.example/y.png> and <b>b</b>')
    assert images(out) == [] and not [t for t in tokens(out) if t.type.startswith("html")]
    assert visible(out) == ('<img src="http://evil.example/x.png">\n\n'
                            "text <img src=http://evil.example/y.png> and <b>b</b>")


def test_an_autolinked_image_url_is_a_link_not_an_image() -> None:
    out = render("<http://evil.example/p.png> and http://evil.example/q.png")
    assert images(out) == []
    assert links(out) == ["http://evil.example/p.png", "http://evil.example/q.png"]


def test_images_from_allowed_hosts_load() -> None:
    out = render("![a](https://ok.example/a.png) ![b](http://OK.example:80/b.png) ![c](http://127.0.0.1:8765/c.png)")
    assert images(out) == ["https://ok.example/a.png", "http://OK.example:80/b.png", "http://127.0.0.1:8765/c.png"]
    refused = render("![a](https://ok.example:444/a.png) ![b](http://127.0.0.1:8766/b.png) "
                     "![c](http://ok.example.evil.example/c.png) ![d](//ok.example/d.png) ![e](/e.png)")
    assert images(refused) == []


def test_a_small_data_image_loads_and_a_large_or_vector_one_does_not() -> None:
    small, large = png(100), png(101)
    assert images(render(f"![s]({small})", max_data=100)) == [small]
    out = render(f"![l]({large})", max_data=100)
    assert images(out) == [] and visible(out) == '[image "l": inline PNG image, 101 bytes]'
    svg = "data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode()
    assert images(render(f"![v]({svg})", max_data=1000)) == []


# -- links ----------------------------------------------------------------------------------------
def test_a_link_shows_its_destination_host_unless_its_text_names_it() -> None:
    assert render("[docs](https://evil.example/x)") == "[docs](<https://evil.example/x>) (evil.example)"
    assert visible(render("[evil.example](https://evil.example/y)")) == "evil.example"
    assert visible(render("[https://evil.example/z](https://evil.example/y)")) == "https://evil.example/z"
    assert visible(render("[ok.example](https://evil.example/y)")) == "ok.example (evil.example)"
    assert visible(render("[x](http://h.example:8080/)")) == "x (h.example:8080)"
    assert visible(render("[mail me](mailto:a@b.example)")) == "mail me (a@b.example)"


def test_autolinks_and_bare_urls_stay_links() -> None:
    out = render("<https://a.example/b> see https://b.example/c?q=1&r=2")
    assert links(out) == ["https://a.example/b", "https://b.example/c?q=1&r=2"]
    assert visible(out) == "https://a.example/b see https://b.example/c?q=1&r=2"


@pytest.mark.parametrize("href", [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "vbscript:msgbox(1)", "data:text/html,hi",
    "data:image/png;base64,iVBORw0KGgo=", "file:///etc/passwd", "//evil.example/x", "/relative",
    "https://user@evil.example/", "ftp://files.example/x",
])
def test_links_that_are_not_http_or_mailto_are_text(href: str) -> None:
    for text in (f"[click]({href})", f"[click][r]\n\n[r]: <{href}>", f"<{href}>"):
        out = render(text)
        assert links(out) == [], (text, out)


def test_a_refused_link_shows_its_text_and_where_it_pointed() -> None:
    assert visible(render("[docs](/docs/page)")) == "docs (/docs/page)"


# -- Streamlit's own Markdown extensions ------------------------------------------------------------
def test_streamlit_directives_icons_emoji_and_latex_are_shown_as_typed() -> None:
    text = ":red[alert] :blue-background[x] :material/home: :smile: $x^2$ costs $5 to $10 :help[tip]"
    out = render(text)
    assert visible(out) == text
    assert out == (r"\:red\[alert\] \:blue-background\[x\] \:material\/home\: \:smile\: \$x\^2\$ costs \$5 to"
                   r" \$10 \:help\[tip\]")


def test_a_mermaid_block_is_shown_as_code_not_drawn() -> None:
    out = render("```mermaid\ngraph TD; A-->B\n```\n\n```Mermaid-js\nx\n```\n\n```python\nprint(1)\n```")
    fences = [t for t in tokens(out) if t.type == "fence"]
    assert [(f.info, f.content) for f in fences] == [("", "graph TD; A-->B\n"), ("", "x\n"), ("python", "print(1)\n")]


# -- what stays Markdown ---------------------------------------------------------------------------
def test_ordinary_markdown_keeps_its_structure() -> None:
    text = ("# Plan for C#\n\nSome **bold**, *em*, ~~gone~~ and `code`.\n\n- one\n- two\n  1. a\n  2. b\n\n"
            "> quoted\n\n| k | v |\n|:-|-:|\n| a | 1 |\n\n***\n\nline one  \nline two")
    out = render(text)
    assert READER.render(out) == READER.render(text)


def test_code_keeps_its_content_and_shows_markdown_in_it_literally() -> None:
    text = "```\n![x](http://evil.example/p.png)\n```` and ``` inside\n```\n\n`` ![y](http://e.example/q) ` ``"
    out = render(text)
    assert images(out) == []
    assert READER.render(out) == READER.render(text)


def test_rendering_rendered_markdown_again_changes_nothing_a_reader_sees() -> None:
    text = "A [link](https://evil.example/) and ![img](http://evil.example/p.png) and `$x$`"
    once = render(text)
    assert visible(once) == 'A link (evil.example) and [image "img": evil.example/p.png] and $x$'
    assert visible(render(once)) == visible(once)
    assert problems(once) == problems(render(once)) == []


# -- exports --------------------------------------------------------------------------------------
def test_an_export_writes_images_as_text_links() -> None:
    out = export_markdown("![chart](https://ok.example/c.png?x=1) ![d](data:image/png;base64,iVBORw0KGgo=) "
                          "[![i](http://evil.example/i.png)](https://docs.example/)")
    assert images(out) == []
    assert links(out) == ["https://ok.example/c.png?x=1", "https://docs.example/"]
    assert visible(out) == ('[image "chart": ok.example/c.png?…] [image "d": inline PNG image, 8 bytes] '
                            '[image "i": evil.example/i.png] (docs.example)')


# -- the last wall ----------------------------------------------------------------------------------
def test_if_the_writer_ever_wrote_something_unsafe_the_answer_is_shown_as_plain_text(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from core import safe_markdown as module

    monkeypatch.setattr(module._Writer, "document", lambda self, text: "![x](http://evil.example/p.png)")
    text = "**hi** ![x](http://evil.example/p.png)"
    with caplog.at_level("WARNING", logger="advisor.safe_markdown"):
        out = safe_markdown(text, allowed_image_hosts=ALLOWED, max_data_image_bytes=0)
    assert out == r"\*\*hi\*\* \!\[x\](http\:\/\/evil.example\/p.png)"
    assert "image 'http://evil.example/p.png'" in caplog.text


def test_find_unsafe_names_what_would_load_or_link() -> None:
    policy = ImagePolicy(allowed_hosts=ALLOWED, max_data_bytes=10)
    assert find_unsafe("![x](http://evil.example/p.png) <b>x</b> [y](ftp://f.example/)", policy) == [
        "image 'http://evil.example/p.png'", "raw HTML '<b>'", "raw HTML '</b>'", "link 'ftp://f.example/'"]
    assert find_unsafe("![x](https://ok.example/p.png)", policy) == []
    assert find_unsafe("![x](https://ok.example/p.png)", policy, images_as_links=True) != []


# -- the settings that feed it --------------------------------------------------------------------
def test_image_settings_default_to_no_hosts_and_100_kb(set_env) -> None:
    settings = get_settings()
    assert settings.image_hosts == frozenset() and settings.max_data_image_bytes == 100_000
    set_env(ALLOWED_IMAGE_HOSTS=" Images.Example , 127.0.0.1:8765,", MAX_DATA_IMAGE_BYTES="0")
    settings = get_settings()
    assert settings.image_hosts == {"images.example", "127.0.0.1:8765"} and settings.max_data_image_bytes == 0


@pytest.mark.parametrize("value", ["https://images.example", "*.example", "h.example/path", "h.example:0",
                                   "h.example:99999", "bücher.example"])
def test_an_image_host_that_is_not_host_or_host_port_is_refused_at_start(set_env, value: str) -> None:
    set_env(ALLOWED_IMAGE_HOSTS=value)
    with pytest.raises(SettingsError, match="ADVISOR_ALLOWED_IMAGE_HOSTS"):
        get_settings()
