"""Accounts: local sign-up / sign-in (argon2id hashes), OIDC identity → user row, sign-in addresses.

Local mode
    ``sign_up`` checks the password rules, hashes with argon2id (``core.passwords``: over the
    password's NFKC form) and inserts the row; the first account ever created becomes admin
    (decided under a lock: a PostgreSQL advisory lock, or the SQLite write lock, so two
    simultaneous first sign-ups cannot both become admin).
    ``sign_in`` answers every failure with the same message, verifies against a dummy hash when the
    email is unknown (similar timing), rehashes when the parameters changed or the stored hash
    predates normalisation, and counts failed attempts per email and per session
    (``core.rate_limits``). While an admin's forced reset is pending, the password no longer signs
    in: only the one-time code does (``core.reset_codes``), once.
OIDC mode
    ``user_for_oidc`` maps a verified identity (email + subject) to a user row, created on first
    sign-in (``auth_provider='oidc'``, no password hash).
Sign-in addresses
    A successful sign-in records the client's address (an HMAC of it, never the address): an
    address the account signed in from recently is not held to the per-email attempt total, so
    guessers elsewhere cannot lock the owner out. ``forget_stale_signin_addresses`` drops the old.

Admin actions on accounts (grant admin, list users, quota overrides) live in ``core.admin``; a
user's own password change in ``core.credentials``.

Passwords are never logged: log lines name a user id or a short hash of the email only.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Delete, delete, func, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import Session, col, select

from core import rate_limits
from core.db import system_session, user_session
from core.passwords import PasswordCheck, hash_password, normalise_password, verify_password
from core.reset_codes import redeem_code
from core.settings import get_settings, secret_hmac
from models import SigninAddress, User
from models.schemas import MAX_EMAIL, SignInIn, SignUpIn, clean_line
from models.types import utcnow

__all__ = [
    "GENERIC_SIGNIN_ERROR",
    "GENERIC_SIGNUP_ERROR",
    "AuthError",
    "AuthUser",
    "PasswordRuleError",
    "SignUpLimitReached",
    "SignedUp",
    "check_password_rules",
    "forget_stale_signin_addresses",
    "get_user",
    "sign_in",
    "sign_up",
    "user_for_oidc",
]

log = logging.getLogger("advisor.auth")

GENERIC_SIGNIN_ERROR = "Email or password is incorrect"
# Arbitrary constant: the advisory lock that serialises user creation (first user becomes admin).
USER_CREATE_LOCK_ID = 7_362_002


class AuthError(Exception):
    """A sign-up / sign-in / admin failure whose message is safe to show; ``field`` names the input."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class PasswordRuleError(AuthError):
    """The password does not meet the rules."""


class SignUpLimitReached(AuthError):
    """The client's address has created as many accounts as it may this hour."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message, field="email")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class AuthUser:
    """A signed-in (or just created) account: who it is, whether it is an admin, and whether it
    must set a new password before anything else (an admin forced a reset)."""

    id: uuid.UUID
    email: str
    is_admin: bool
    password_reset_required: bool = False

    @classmethod
    def of(cls, user: User) -> AuthUser:
        return cls(id=user.id, email=user.email, is_admin=user.is_admin,
                   password_reset_required=user.password_reset_required)


SignedUp = AuthUser


def _email_ref(email: str) -> str:
    return hashlib.sha256(email.encode("utf-8")).hexdigest()[:10]


# ------------------------------------------------------------------------------------------------
# addresses an account signed in from (models.signin): not held to the per-email attempt total
# ------------------------------------------------------------------------------------------------
def _address_hash(client: str) -> str:
    """HMAC-SHA256 of a client address keyed with the deployment's secret (domain-separated): the
    address is never stored, and its hash cannot be reversed by hashing candidate addresses."""
    return secret_hmac(client, domain="advisor-signin-address")


def _known_since(now: datetime | None = None) -> datetime | None:
    """Addresses last used before this are not known any more (None: none is, the setting is 0)."""
    days = get_settings().signin_known_address_days
    return (now or utcnow()) - timedelta(days=days) if days else None


def _stale_addresses(since: datetime | None) -> Delete:
    """The addresses no longer known: last used before ``since`` (every one when it is None)."""
    stmt = delete(SigninAddress)
    return stmt if since is None else stmt.where(col(SigninAddress.last_seen) < since)


def _is_known_address(email: str, client: str) -> bool:
    """Whether the account of ``email`` signed in from ``client`` within the configured days."""
    since = _known_since()
    if since is None:
        return False
    with system_session() as s:
        found = s.exec(
            select(SigninAddress.user_id)
            .join(User, col(User.id) == col(SigninAddress.user_id))
            .where(col(User.email) == email, col(SigninAddress.address_hash) == _address_hash(client),
                   col(SigninAddress.last_seen) >= since)
        ).first()
    return found is not None


def _remember_address(user_id: uuid.UUID, client: str | None) -> None:
    """Record a successful sign-in from ``client`` (and forget the user's addresses gone stale)."""
    since = _known_since()
    if not client or since is None:
        return
    values = {"user_id": user_id, "address_hash": _address_hash(client), "last_seen": utcnow()}
    try:
        with system_session() as s:  # sign-in records: a user session may read them, not write them
            s.execute(_stale_addresses(since).where(col(SigninAddress.user_id) == user_id))
            insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
            stmt = insert(SigninAddress).values(values)
            s.execute(stmt.on_conflict_do_update(index_elements=["user_id", "address_hash"],
                                                 set_={"last_seen": stmt.excluded.last_seen}))
    except DBAPIError as exc:  # bookkeeping: the sign-in itself succeeded
        log.warning("could not record the sign-in address of id=%s (%s)", user_id, type(exc).__name__)


def forget_stale_signin_addresses(*, now: datetime | None = None) -> int:
    """Delete every account's sign-in addresses last used longer ago than
    ``signin_known_address_days`` (all of them when it is 0): they are kept only while they serve.
    Run at start (``streamlit_app.boot``); a user's own sign-in also drops their stale ones."""
    with system_session() as s:
        result = s.execute(_stale_addresses(_known_since(now)))
        return int(getattr(result, "rowcount", 0) or 0)


# ------------------------------------------------------------------------------------------------
# password rules
# ------------------------------------------------------------------------------------------------
def _char_class(ch: str) -> str:
    if ch.islower():
        return "lower"
    if ch.isupper():
        return "upper"
    if ch.isdigit():
        return "digit"
    return "other"


def check_password_rules(password: str, *, email: str) -> None:
    """Raise ``PasswordRuleError`` (field ``password``) when the password (as it is hashed: NFKC)
    breaks a rule."""
    password = normalise_password(password)
    minimum = get_settings().min_password_length
    if len(password) < minimum:
        raise PasswordRuleError(f"Use at least {minimum} characters.", field="password")
    if len({_char_class(ch) for ch in password}) < 2:
        raise PasswordRuleError(
            "Mix at least two kinds of characters (lower case, upper case, digits, symbols).",
            field="password",
        )
    if password.strip().casefold() == email.strip().casefold():
        raise PasswordRuleError("The password must not be your email address.", field="password")


# ------------------------------------------------------------------------------------------------
# user creation (first user becomes admin, race-safely)
# ------------------------------------------------------------------------------------------------
def _lock_user_creation(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": USER_CREATE_LOCK_ID})
    else:
        # SQLite: a write statement takes the database write lock until commit; concurrent
        # creators wait (busy_timeout) and then see the committed first user.
        session.execute(update(User).where(text("1 = 0")).values(is_admin=False))


GENERIC_SIGNUP_ERROR = (
    "We could not create an account with these details. If you already have an account, sign in instead."
)


def _create_user(*, email: str, password_hash: str | None, provider: str, subject: str | None) -> AuthUser:
    try:
        with system_session() as s:
            _lock_user_creation(s)
            existing = s.exec(select(User.id).where(User.email == email)).first()
            if existing is not None:
                raise AuthError(GENERIC_SIGNUP_ERROR, field="email")
            count = s.exec(select(func.count()).select_from(User)).one()
            user = User(
                email=email,
                password_hash=password_hash,
                auth_provider=provider,
                oidc_subject=subject,
                is_admin=count == 0,
            )
            s.add(user)
            s.flush()
            created = AuthUser.of(user)
    except IntegrityError:
        raise AuthError(GENERIC_SIGNUP_ERROR, field="email") from None
    log.info("user created id=%s provider=%s admin=%s", created.id, provider, created.is_admin)
    return created


# ------------------------------------------------------------------------------------------------
# local accounts
# ------------------------------------------------------------------------------------------------
def sign_up(data: SignUpIn, *, session_key: str | None = None, client: str | None = None) -> SignedUp:
    """Create a local account. Raises ``PasswordRuleError``, ``SignUpLimitReached``, ``AuthError``
    or ``LimitExceeded``.

    An address that is already registered gets the same neutral message as any refused sign-up
    (never "this email exists"), and each attempt counts against the same per-email and
    per-session attempt limit as sign-ins, so the form cannot be used to probe for accounts at
    speed. (A sign-up that succeeds necessarily tells that the address was free.)

    ``client``: the client's address when known. Each sign-up that passes the password rules
    takes one of the address's ``signups_per_client_per_hour`` slots; when they are used up, the
    sign-up is refused with ``SignUpLimitReached`` (its message says when to try again).
    """
    if session_key:
        rate_limits.take_signin_attempt(email=data.email, session_key=session_key, client=client)
    password = data.password
    check_password_rules(password, email=data.email)
    try:
        rate_limits.take_signup_slot(client=client)
    except rate_limits.LimitExceeded as exc:
        log.info("sign-up refused: the client address has used its sign-ups for the hour")
        raise SignUpLimitReached(exc.message, retry_after_s=exc.retry_after_s) from None
    password_hash = hash_password(password)  # before the lookup: the same work either way
    try:
        return _create_user(email=data.email, password_hash=password_hash, provider="local", subject=None)
    except AuthError:
        log.info("sign-up refused email_ref=%s", _email_ref(data.email))
        rate_limits.record_signin_failure(client=client)
        raise


def sign_in(data: SignInIn, *, session_key: str, client: str | None = None) -> AuthUser:
    """Check email + password. Raises ``LimitExceeded`` when locked out, else ``AuthError``.

    ``client``: the client's address when known (failed attempts are counted per address too)."""
    if not session_key:
        raise ValueError("session_key is required")
    # counted before the check; an address the account signed in from is not held to the email's total
    rate_limits.take_signin_attempt(
        email=data.email, session_key=session_key, client=client,
        known_client=(lambda: _is_known_address(data.email, client)) if client else None,
    )
    with system_session() as s:
        user = s.exec(select(User).where(User.email == data.email)).first()
    local = user is not None and user.auth_provider == "local"
    resetting = user is not None and local and user.password_reset_required
    # while an admin's reset is pending the password no longer signs in: only the one-time code does
    stored = user.password_hash if user is not None and local and not resetting else None
    check = verify_password(stored, data.password)  # always runs (dummy hash when unknown): similar timing
    if user is not None and resetting:
        with system_session() as s:
            check = PasswordCheck(ok=redeem_code(s, user.id, data.password))
    if user is None or not check.ok:
        log.info("sign-in failed email_ref=%s", _email_ref(data.email))
        rate_limits.record_signin_failure(client=client)
        raise AuthError(GENERIC_SIGNIN_ERROR)
    if check.needs_rehash:  # outdated parameters, or a hash made before passwords were normalised
        new_hash = hash_password(data.password)
        with system_session() as s:  # authentication fields are written by the system role only
            s.execute(update(User).where(col(User.id) == user.id).values(password_hash=new_hash))
        log.info("password rehashed id=%s", user.id)
    _remember_address(user.id, client)
    rate_limits.clear_signin_failures(email=data.email, client=client)
    log.info("sign-in ok id=%s", user.id)
    return AuthUser.of(user)


def get_user(user_id: uuid.UUID) -> AuthUser | None:
    """The current state of a signed-in user (None when the account no longer exists)."""
    with user_session(user_id) as s:
        user = s.exec(select(User).where(User.id == user_id)).first()
        return AuthUser.of(user) if user is not None else None


# ------------------------------------------------------------------------------------------------
# OIDC
# ------------------------------------------------------------------------------------------------
def _oidc_email(email: str) -> str:
    value = clean_line(email).lower()
    if not value or len(value) > MAX_EMAIL or value.count("@") != 1:
        raise AuthError("Your identity provider did not send a usable email address.")
    return value


def user_for_oidc(*, email: str, subject: str, email_verified: bool) -> AuthUser:
    """The user row of an OIDC identity: created on first sign-in, reused after."""
    if not email_verified:
        raise AuthError("Your identity provider has not verified this email address.")
    if not subject or len(subject) > 255:
        raise AuthError("Your identity provider did not send a usable subject identifier.")
    address = _oidc_email(email)
    with system_session() as s:
        # The subject is the identity's stable id: an email changed at the provider is the same
        # person (their account follows the new, verified address), not a new, empty account.
        by_subject = s.exec(
            select(User)
            .where(User.auth_provider == "oidc", User.oidc_subject == subject)
            .order_by(col(User.created_at))
        ).first()
        if by_subject is not None:
            if by_subject.email != address:
                if s.exec(select(User.id).where(User.email == address)).first() is not None:
                    raise AuthError("This email belongs to another account.")
                log.info("oidc email changed id=%s", by_subject.id)
                by_subject.email = address
                s.add(by_subject)
                s.flush()
            return AuthUser.of(by_subject)
        user = s.exec(select(User).where(User.email == address)).first()
        if user is not None:
            if user.auth_provider != "oidc":
                raise AuthError("This email belongs to a password account; ask an admin to migrate it.")
            if user.oidc_subject is None:
                user.oidc_subject = subject
                s.add(user)
            elif user.oidc_subject != subject:
                log.warning("oidc subject mismatch id=%s", user.id)
                raise AuthError("This email is linked to a different identity.")
            return AuthUser.of(user)
    try:
        return _create_user(email=address, password_hash=None, provider="oidc", subject=subject)
    except AuthError:
        # created concurrently by another session of the same person: reuse it
        with system_session() as s:
            user = s.exec(select(User).where(User.email == address, User.oidc_subject == subject)).first()
            if user is None:
                raise
            return AuthUser.of(user)
