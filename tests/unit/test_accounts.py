"""core.accounts without a database: password rules and the shape of stored hashes."""

from __future__ import annotations

import pytest

from core import accounts, passwords


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
    with pytest.raises(accounts.PasswordRuleError) as info:
        accounts.check_password_rules(password, email="someone@example.com")
    assert info.value.field == "password"


@pytest.mark.parametrize("password", ["correct horse 42", "Tr0ub4dor&3x", "abcdefghij1"])
def test_password_rules_accept(password: str) -> None:
    accounts.check_password_rules(password, email="someone@example.com")


def test_minimum_length_follows_settings(set_env) -> None:
    set_env(MIN_PASSWORD_LENGTH="16")
    with pytest.raises(accounts.PasswordRuleError, match="16"):
        accounts.check_password_rules("abcdefghij12345", email="a@example.com")
    accounts.check_password_rules("abcdefghij123456", email="a@example.com")


def test_hasher_is_argon2id() -> None:
    h = passwords.hasher().hash("a password 123")
    assert h.startswith("$argon2id$")
    assert "a password 123" not in h
