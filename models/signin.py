"""``signin_addresses``: client addresses a user has signed in from, so guessers elsewhere cannot lock
them out.

One row per (user, keyed hash of a client address) with the last successful sign-in from it. The
per-email total of sign-in attempts (``ADVISOR_SIGNIN_ATTEMPTS_PER_EMAIL``) does not refuse an
attempt from an address the account signed in from within ``ADVISOR_SIGNIN_KNOWN_ADDRESS_DAYS``:
guessers at many other addresses use that total up, the owner at a known address still gets the
per-address attempts. The address itself is not stored, only HMAC-SHA256 keyed with the deployment's
secret. Deleted with the user (privacy deletion is catalogue-driven) and part of their export.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from models.types import UTCDateTime, utcnow


class SigninAddress(SQLModel, table=True):
    __tablename__ = "signin_addresses"

    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", primary_key=True)
    address_hash: str = Field(max_length=64, primary_key=True)
    last_seen: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
