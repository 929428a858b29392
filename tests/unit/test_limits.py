"""core.limits without a database: how a waiting time is shown."""

from __future__ import annotations

import pytest

from core.limits import format_duration


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
