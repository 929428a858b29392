"""core.link_rules: which URLs may be links or images, read the way a browser reads them."""

from __future__ import annotations

import base64

import pytest

from core.link_rules import ImagePolicy, data_image_size, image_allowed, image_label, link_target, parse_web

POLICY = ImagePolicy(allowed_hosts=frozenset({"ok.example", "127.0.0.1:8765", "alt.example:8443"}),
                     max_data_bytes=16)


@pytest.mark.parametrize(("url", "host"), [
    ("https://OK.example/a", "ok.example"), ("http://h.example:8080/x?y#z", "h.example:8080"),
    ("http://127.0.0.1:8765/p.png", "127.0.0.1:8765"), ("https://a.example#@evil.example/", "a.example"),
    ("https://xn--80ak6aa92e.com/", "xn--80ak6aa92e.com"),
])
def test_a_web_url_is_read_by_scheme_host_and_port(url: str, host: str) -> None:
    web = parse_web(url)
    assert web is not None and web.shown_host == host


@pytest.mark.parametrize("url", [
    "https://user@evil.example/", "https://ok.example%2F@evil.example/", "https://evil%2Eexample/",
    "https:evil.example/x", "https:/evil.example/x", "https:///evil.example/x", "https:\\\\evil.example/x",
    "https://evil.example/a b", "https://[::1]/", "https://h.example:99999/", "https://h.example:x/",
    "//evil.example/x", "ftp://h.example/", "javascript://h.example/%0Aalert(1)", "https://bücher.example/",
    "https://-h.example/", "",
])
def test_a_url_that_cannot_be_read_unambiguously_is_refused(url: str) -> None:
    assert parse_web(url) is None


def test_links_are_http_https_or_mailto_only() -> None:
    assert link_target("https://evil.example/x") is not None
    assert link_target("mailto:a@b.example") is not None
    for href in ("javascript:alert(1)", "vbscript:x", "data:text/html,x", "file:///etc/passwd", "/docs",
                 "mailto:", "mailto:nobody", "tel:+100", "//evil.example/"):
        assert link_target(href) is None, href


def test_a_link_text_names_its_destination_only_by_the_same_host() -> None:
    target = link_target("https://evil.example/x")
    assert target is not None and target.shown == "evil.example"
    assert target.named_by("evil.example") and target.named_by("https://EVIL.example/other")
    for text in ("docs", "ok.example", "evil.example.ok.example", "see evil.example", "evil.example:444", ""):
        assert not target.named_by(text), text


def test_images_load_only_from_allowed_hosts_and_ports() -> None:
    for src in ("https://ok.example/a.png", "http://OK.EXAMPLE/a.png", "http://ok.example:80/a.png",
                "http://127.0.0.1:8765/p.png", "https://alt.example:8443/p.png"):
        assert image_allowed(src, POLICY), src
    for src in ("https://ok.example:444/a.png", "http://127.0.0.1/p.png", "http://127.0.0.1:8766/p.png",
                "https://alt.example/p.png", "https://evil.example/ok.example/a.png", "//ok.example/a.png",
                "/a.png", "https://ok.example@evil.example/a.png"):
        assert not image_allowed(src, POLICY), src


def test_data_images_are_raster_types_under_the_size_limit() -> None:
    def data(kind: str, size: int) -> str:
        return f"data:{kind};base64," + base64.b64encode(b"x" * size).decode()

    assert data_image_size(data("image/png", 16)) == 16
    assert image_allowed(data("image/png", 16), POLICY) and image_allowed(data("image/WEBP", 3), POLICY)
    assert not image_allowed(data("image/png", 17), POLICY)
    assert not image_allowed(data("image/svg+xml", 3), POLICY)
    assert not image_allowed("data:image/png,rawbytes", POLICY)
    assert not image_allowed("data:image/png;base64,not base64!", POLICY)
    assert image_label(data("image/jpeg", 2048)) == "inline JPEG image, 2,048 bytes"


def test_a_refused_image_is_labelled_by_where_it_would_come_from() -> None:
    assert image_label("http://h.example/pixel.png?d=secret") == "h.example/pixel.png?…"
    assert image_label("https://h.example:8443/") == "h.example:8443"
    assert image_label("https://h.example/" + "p" * 100).endswith("p…")
    assert image_label("javascript:alert(1)") == "javascript:alert(1)"
