"""Password rules and the shape of stored hashes (no database)."""

from __future__ import annotations

import pytest

from core import auth
from core.limits import format_duration


@pytest.mark.parametrize(
    "password",
    [
        "Sh0rt!",  # too short (default minimum 10)
        "abcdefghijkl",  # one class: lower case
        "ABCDEFGHIJKL",  # one class: upper case
        "123456789012",  # one class: digits
        "!!!!!!!!!!!!",  # one class: symbols
        "Someone@Example.com",  # the email itself (case-insensitive)
    ],
)
def test_password_rules_refuse(password: str) -> None:
    with pytest.raises(auth.PasswordRuleError) as info:
        auth.check_password_rules(password, email="someone@example.com")
    assert info.value.field == "password"


@pytest.mark.parametrize("password", ["correct horse 42", "Tr0ub4dor&3x", "abcdefghij1"])
def test_password_rules_accept(password: str) -> None:
    auth.check_password_rules(password, email="someone@example.com")


def test_minimum_length_follows_settings(set_env) -> None:
    set_env(MIN_PASSWORD_LENGTH="16")
    with pytest.raises(auth.PasswordRuleError, match="16"):
        auth.check_password_rules("abcdefghij12345", email="a@example.com")
    auth.check_password_rules("abcdefghij123456", email="a@example.com")


def test_hasher_is_argon2id() -> None:
    h = auth.hasher().hash("a password 123")
    assert h.startswith("$argon2id$")
    assert "a password 123" not in h


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
