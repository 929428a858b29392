"""core.rate_limits without a database: how a waiting time is shown, and which address counts."""

from __future__ import annotations

import pytest

from core.rate_limits import client_address, format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (42.2, "43 s"),
        (60, "1 min"),
        (185, "3 min 5 s"),
        (11_520, "3 h 12 min"),
        (356_400, "4 d 3 h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("peer", "forwarded", "hops", "expected"),
    [
        ("203.0.113.5", [], 0, "203.0.113.5"),  # no proxy: the peer
        ("203.0.113.5", ["198.51.100.1"], 0, "203.0.113.5"),  # a header nobody trusts is ignored
        (None, [], 0, None),  # localhost: unknown, not counted
        ("10.0.0.2", ["198.51.100.1"], 1, "198.51.100.1"),  # behind our load balancer
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], 1, "198.51.100.1"),  # a forged entry on the left
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1, 10.0.0.9"], 2, "198.51.100.1"),  # two proxies, two headers
        ("203.0.113.5", [], 1, "203.0.113.5"),  # not through our proxy: the peer
        ("10.0.0.2", ["not-an-address"], 1, None),
        ("10.0.0.2", ["[2001:db8::1]"], 1, "2001:db8::1"),
    ],
)
def test_client_address(peer, forwarded, hops, expected) -> None:
    assert client_address(peer, forwarded, hops) == expected

