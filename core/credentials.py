"""A user's own credentials: changing the password, setting one after an admin's reset, signing out
everywhere.

``change_password`` requires the current password (checked like a sign-in: argon2id over its NFKC
form, and counted against the account's sign-in attempts, so a borrowed session cannot guess at it
freely), checks the new one against the password rules, and stores a fresh argon2id hash of it.
``set_new_password`` does the same without the current password, only while an admin's forced reset
is pending (the person signed in with the one-time code: ``core.reset_codes``), and clears it.
Authentication fields are written by the system role only (migration 0010): the user session may not
touch ``users.password_hash``.

Either way every OTHER session of the user is revoked (``core.sessions``): whoever else was signed
in with the old password is signed out at their next interaction; the session that made the change
(``keep_token_hash``) stays. ``sign_out_everywhere`` revokes every session, this one too.

Passwords are never logged.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import update
from sqlmodel import col, select

from core import rate_limits
from core.accounts import AuthError, PasswordRuleError, check_password_rules
from core.db import system_session
from core.passwords import hash_password, verify_password
from core.reset_codes import clear_reset
from core.sessions import revoke_user_sessions
from models import User
from models.schemas import ChangePasswordIn, NewPasswordIn

__all__ = [
    "CURRENT_PASSWORD_WRONG",
    "NOT_LOCAL",
    "NO_RESET_PENDING",
    "change_password",
    "set_new_password",
    "sign_out_everywhere",
]

log = logging.getLogger("advisor.auth")

CURRENT_PASSWORD_WRONG = "Your current password is not correct."  # noqa: S105 (a message)
NOT_LOCAL = "Your password is managed by your identity provider; change it there."
NO_RESET_PENDING = "There is no password reset to finish: change your password on the Account page."
RESET_PENDING = "An admin reset your password: set a new one first."


def _local_account(user_id: uuid.UUID) -> User:
    """The row of a local (password) account; ``AuthError`` otherwise."""
    with system_session() as s:
        user = s.exec(select(User).where(col(User.id) == user_id)).first()
    if user is None or user.auth_provider != "local":
        raise AuthError(NOT_LOCAL)
    return user


def _new_password_hash(password: str, *, email: str) -> str:
    try:
        check_password_rules(password, email=email)
    except PasswordRuleError as exc:
        raise PasswordRuleError(exc.message, field="new_password") from None
    return hash_password(password)


def change_password(*, user_id: uuid.UUID, data: ChangePasswordIn, keep_token_hash: str | None = None) -> int:
    """Replace the user's password and revoke their other sessions (all but ``keep_token_hash``'s);
    returns how many were revoked. Raises ``AuthError`` (its ``field`` names the input at fault:
    ``current_password`` or ``new_password``) or ``LimitExceeded`` (too many wrong current passwords).
    """
    user = _local_account(user_id)
    if user.password_reset_required or user.password_hash is None:
        raise AuthError(RESET_PENDING)
    email, stored = user.email, user.password_hash
    # the account's own key: wrong current passwords count like failed sign-ins to the account
    rate_limits.take_signin_attempt(email=email, session_key=f"password-change:{user_id}")
    if not verify_password(stored, data.current_password).ok:
        log.info("password change refused (current password) id=%s", user_id)
        raise AuthError(CURRENT_PASSWORD_WRONG, field="current_password")
    new_hash = _new_password_hash(data.new_password, email=email)
    with system_session() as s:  # authentication fields are written by the system role only
        result = s.execute(
            update(User)
            .where(col(User.id) == user_id, col(User.password_hash) == stored,
                   col(User.password_reset_required).is_(False))
            .values(password_hash=new_hash)
        )
        if getattr(result, "rowcount", 0) != 1:  # changed (or reset) meanwhile, elsewhere
            raise AuthError("Your password was changed elsewhere meanwhile. Sign in again.")
    rate_limits.clear_signin_failures(email=email)
    revoked = revoke_user_sessions(user_id, except_token_hash=keep_token_hash)
    log.info("password changed id=%s, other sessions revoked: %d", user_id, revoked)
    return revoked


def set_new_password(*, user_id: uuid.UUID, data: NewPasswordIn, keep_token_hash: str | None = None) -> int:
    """Set the password of an account whose admin forced a reset (the person signed in with the
    one-time code), clear the reset, and revoke the user's other sessions; returns how many.
    Raises ``AuthError`` (``NO_RESET_PENDING`` when no reset is pending; ``field`` ``new_password``
    when the password breaks a rule)."""
    user = _local_account(user_id)
    if not user.password_reset_required:
        raise AuthError(NO_RESET_PENDING)
    new_hash = _new_password_hash(data.new_password, email=user.email)
    with system_session() as s:
        result = s.execute(
            update(User)
            .where(col(User.id) == user_id, col(User.password_reset_required).is_(True))
            .values(password_hash=new_hash)
        )
        if getattr(result, "rowcount", 0) != 1:  # finished meanwhile, in another tab
            raise AuthError(NO_RESET_PENDING)
        clear_reset(s, user_id)
    rate_limits.clear_signin_failures(email=user.email)
    revoked = revoke_user_sessions(user_id, except_token_hash=keep_token_hash)
    log.info("password set after a reset id=%s, other sessions revoked: %d", user_id, revoked)
    return revoked


def sign_out_everywhere(*, user_id: uuid.UUID) -> int:
    """Revoke every session of the user, the caller's too; returns how many were ended."""
    revoked = revoke_user_sessions(user_id)
    log.info("signed out everywhere id=%s, sessions revoked: %d", user_id, revoked)
    return revoked
