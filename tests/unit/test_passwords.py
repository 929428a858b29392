"""core.passwords: argon2id over the NFKC form; hashes made before normalisation keep working."""

from __future__ import annotations

import unicodedata

import pytest

from core import passwords

# "é" composed (NFC, one code point) and decomposed (NFD, "e" + a combining acute accent)
NFC = unicodedata.normalize("NFC", "Café-crème 42")
NFD = unicodedata.normalize("NFD", NFC)


def test_the_two_forms_differ_as_typed() -> None:
    assert NFC != NFD and len(NFD) > len(NFC)


def test_a_password_created_in_nfc_verifies_when_typed_in_nfd() -> None:
    stored = passwords.hash_password(NFC)
    assert passwords.verify_password(stored, NFD) == passwords.PasswordCheck(ok=True, needs_rehash=False)
    assert passwords.verify_password(stored, NFC).ok
    assert not passwords.verify_password(stored, NFC + "x").ok


def test_compatibility_forms_are_one_password() -> None:
    """NFKC also folds compatibility characters: a full-width digit, the "ﬁ" ligature."""
    stored = passwords.hash_password("ﬁsh and chips ２")
    assert passwords.verify_password(stored, "fish and chips 2").ok


@pytest.mark.parametrize("typed", [NFD, NFC])
def test_a_hash_made_before_normalisation_still_verifies_and_asks_for_a_rehash(typed: str) -> None:
    legacy = passwords.hasher().hash(NFD)  # stored as typed, before passwords were normalised
    check = passwords.verify_password(legacy, NFD)
    assert check.ok and check.needs_rehash
    rehashed = passwords.hash_password(NFD)
    assert passwords.verify_password(rehashed, typed) == passwords.PasswordCheck(ok=True, needs_rehash=False)


def test_an_ascii_legacy_hash_needs_no_rehash() -> None:
    """For a password NFKC leaves alone, the old hash and a new one check the same string."""
    stored = passwords.hasher().hash("plain ascii 123")
    assert passwords.verify_password(stored, "plain ascii 123") == passwords.PasswordCheck(ok=True)


def test_no_stored_hash_never_verifies() -> None:
    assert passwords.verify_password(None, "anything 123") == passwords.PasswordCheck(ok=False)
    assert passwords.verify_password("not-a-hash", "anything 123") == passwords.PasswordCheck(ok=False)


def test_outdated_parameters_ask_for_a_rehash() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(passwords.normalise_password(NFC))
    assert passwords.verify_password(weak, NFD) == passwords.PasswordCheck(ok=True, needs_rehash=True)


def test_hashes_are_argon2id_and_hold_no_password() -> None:
    stored = passwords.hash_password(NFC)
    assert stored.startswith("$argon2id$") and NFC not in stored and NFD not in stored
