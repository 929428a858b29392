"""A user's own credentials: changing the password.

``change_password`` requires the current password (checked like a sign-in: argon2id over its NFKC
form, and counted against the account's sign-in attempts, so a borrowed session cannot guess at it
freely), checks the new one against the password rules, and stores a fresh argon2id hash of it.
Authentication fields are written by the system role only (migration 0010): the user session may not
touch ``users.password_hash``.

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
from models import User
from models.schemas import ChangePasswordIn

__all__ = ["CURRENT_PASSWORD_WRONG", "NOT_LOCAL", "change_password"]

log = logging.getLogger("advisor.auth")

CURRENT_PASSWORD_WRONG = "Your current password is not correct."  # noqa: S105 (a message)
NOT_LOCAL = "Your password is managed by your identity provider; change it there."


def _local_account(user_id: uuid.UUID) -> tuple[str, str]:
    """The email and stored hash of a local (password) account; ``AuthError`` otherwise."""
    with system_session() as s:
        row = s.exec(
            select(User.email, User.password_hash, User.auth_provider).where(col(User.id) == user_id)
        ).first()
    if row is None or row[2] != "local" or row[1] is None:
        raise AuthError(NOT_LOCAL)
    return row[0], row[1]


def change_password(*, user_id: uuid.UUID, data: ChangePasswordIn) -> None:
    """Replace the user's password. Raises ``AuthError`` (its ``field`` names the input at fault:
    ``current_password`` or ``new_password``) or ``LimitExceeded`` (too many wrong current passwords).
    """
    email, stored = _local_account(user_id)
    # the account's own key: wrong current passwords count like failed sign-ins to the account
    rate_limits.take_signin_attempt(email=email, session_key=f"password-change:{user_id}")
    if not verify_password(stored, data.current_password).ok:
        log.info("password change refused (current password) id=%s", user_id)
        raise AuthError(CURRENT_PASSWORD_WRONG, field="current_password")
    try:
        check_password_rules(data.new_password, email=email)
    except PasswordRuleError as exc:
        raise PasswordRuleError(exc.message, field="new_password") from None
    new_hash = hash_password(data.new_password)
    with system_session() as s:  # authentication fields are written by the system role only
        result = s.execute(
            update(User)
            .where(col(User.id) == user_id, col(User.password_hash) == stored)
            .values(password_hash=new_hash)
        )
        if getattr(result, "rowcount", 0) != 1:  # changed (or reset) meanwhile, elsewhere
            raise AuthError("Your password was changed elsewhere meanwhile. Sign in again.")
    rate_limits.clear_signin_failures(email=email)
    log.info("password changed id=%s", user_id)
