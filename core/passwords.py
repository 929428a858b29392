"""Password hashing: argon2id over the NFKC form of the password.

A password is Unicode-normalised (NFKC) before it is hashed and before it is verified, as NIST SP
800-63B (5.1.1.2) advises: the same password typed as composed characters (NFC, "é" as one code
point) or decomposed ones (NFD, "e" + a combining accent, which some keyboards and systems send)
is the same password.

Hashes stored before normalisation keep working: ``verify_password`` first checks the NFKC form,
then, when the typed password differs from its NFKC form, the password exactly as typed. A match on
that second form (or on outdated argon2 parameters) asks the caller to store a new hash
(``needs_rehash``), made from the NFKC form.

An unknown account is checked against a dummy hash (``stored=None``), with the same steps, so the
two cases take similar time; it never verifies.
"""

from __future__ import annotations

import threading
import unicodedata
import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["PasswordCheck", "hash_password", "hasher", "normalise_password", "verify_password"]

_hasher = PasswordHasher()
_dummy_lock = threading.Lock()
_dummy_hash: str | None = None


@dataclass(frozen=True)
class PasswordCheck:
    """The result of ``verify_password``: whether it matched, and whether to store a new hash."""

    ok: bool
    needs_rehash: bool = False


def hasher() -> PasswordHasher:
    """The process's argon2id hasher (argon2-cffi's recommended parameters)."""
    return _hasher


def normalise_password(password: str) -> str:
    """The form a password is hashed and verified in: NFKC."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    """An argon2id hash of the password's NFKC form."""
    return _hasher.hash(normalise_password(password))


def _dummy() -> str:
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash(uuid.uuid4().hex)
        return _dummy_hash


def _matches(stored: str, candidate: str) -> bool:
    try:
        return _hasher.verify(stored, candidate)
    except (VerificationError, InvalidHashError):
        return False


def verify_password(stored: str | None, password: str) -> PasswordCheck:
    """Check ``password`` against ``stored`` (None: an account without a password, checked against
    a dummy hash so that it takes the same time; never ok)."""
    target = stored or _dummy()
    normal = normalise_password(password)
    if _matches(target, normal):
        ok, legacy = True, False
    elif normal != password and _matches(target, password):
        ok, legacy = True, True  # a hash made before passwords were normalised
    else:
        ok, legacy = False, False
    if not ok or stored is None:
        return PasswordCheck(ok=False)
    return PasswordCheck(ok=True, needs_rehash=legacy or _hasher.check_needs_rehash(stored))
