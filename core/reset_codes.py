"""One-time codes of an admin's forced password reset.

An admin forces a reset (``core.admin.force_password_reset``, after its admin check): the account is
marked ``password_reset_required``, its earlier codes are dropped, and a new code is drawn and shown
to the admin once, to hand over in person (the app sends no email: it makes no network calls but to
LLM providers). Only the code's SHA-256 is stored. From then on the account's password no longer
signs in; the code does, once, within ``CODE_LIFETIME`` (``core.accounts.sign_in``), and the person
must then set a new password before anything else (``core.credentials.set_new_password``), which
clears the mark and any codes left.

A code is 16 characters of Crockford's base-32 alphabet (80 random bits), shown in groups of four.
It is read back forgivingly: case, spaces and hyphens do not matter, and the letters a person may
confuse with digits (I, L, O) count as those digits. Sign-in attempts with a code are rate limited
like any sign-in.

These functions work inside the caller's ``system_session()`` transaction.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, update
from sqlmodel import Session, col

from models import PasswordReset, User
from models.types import utcnow

__all__ = ["CODE_LIFETIME", "IssuedCode", "clear_reset", "code_hash", "issue_code", "redeem_code"]

CODE_LIFETIME: Final = timedelta(hours=24)
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32
CODE_CHARS: Final = 16  # 80 random bits
_READ_AS: Final = str.maketrans({"I": "1", "L": "1", "O": "0", "-": None, " ": None})


@dataclass(frozen=True)
class IssuedCode:
    """A code just issued: shown to the admin once, never stored."""

    user_id: uuid.UUID
    email: str
    code: str
    expires_at: datetime


def _canonical(code: str) -> str:
    return code.strip().upper().translate(_READ_AS)


def code_hash(code: str) -> str:
    """The stored form of a code (SHA-256 hex of its canonical form)."""
    return hashlib.sha256(_canonical(code).encode("utf-8")).hexdigest()


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_CHARS))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_CHARS, 4))


def issue_code(session: Session, user: User, *, now: datetime | None = None) -> IssuedCode:
    """Mark ``user`` as having to reset their password and issue a new one-time code (earlier ones
    stop working)."""
    now = now or utcnow()
    code = _new_code()
    session.execute(update(User).where(col(User.id) == user.id).values(password_reset_required=True))
    session.execute(delete(PasswordReset).where(col(PasswordReset.user_id) == user.id))
    row = PasswordReset(user_id=user.id, code_hash=code_hash(code), created_at=now, expires_at=now + CODE_LIFETIME)
    session.add(row)
    session.flush()
    return IssuedCode(user_id=user.id, email=user.email, code=code, expires_at=row.expires_at)


def redeem_code(session: Session, user_id: uuid.UUID, code: str, *, now: datetime | None = None) -> bool:
    """Use up ``user_id``'s code ``code`` if it is live; True when it was. Expired codes of the user
    are dropped on the way."""
    now = now or utcnow()
    if len(code) > 64:  # no code of ours
        return False
    mine = col(PasswordReset.user_id) == user_id
    session.execute(delete(PasswordReset).where(mine, col(PasswordReset.expires_at) <= now))
    used = session.connection().execute(
        delete(PasswordReset).where(mine, col(PasswordReset.code_hash) == code_hash(code))
    )
    return bool(used.rowcount)


def clear_reset(session: Session, user_id: uuid.UUID) -> None:
    """The reset is done (a new password is set): drop the mark and any codes left."""
    session.execute(update(User).where(col(User.id) == user_id).values(password_reset_required=False))
    session.execute(delete(PasswordReset).where(col(PasswordReset.user_id) == user_id))
