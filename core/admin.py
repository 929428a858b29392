"""Admin actions on accounts: grant admin, list users, set quota overrides, force a password reset
(admins only).

Each action checks, in the same transaction, that the acting user is an admin (``NotAllowed``
otherwise). What an admin sees of a user is identity, role and quota overrides: no content, no hash.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from pydantic import ValidationError
from sqlalchemy import update
from sqlmodel import Session, col, select

from core.accounts import AuthError, AuthUser
from core.db import NotFound, system_session
from core.reset_codes import IssuedCode, issue_code
from core.sessions import revoke_user_sessions
from models import User
from models.schemas import EmailIn, QuotaOverrideIn, field_errors

__all__ = [
    "NotAllowed",
    "UserSummary",
    "force_password_reset",
    "grant_admin",
    "list_users",
    "set_quota_override",
]

log = logging.getLogger("advisor.auth")  # one log stream for sign-ins and admin actions


class NotAllowed(AuthError):
    """The acting user may not do this (not an admin)."""


@dataclass(frozen=True)
class UserSummary:
    """What an admin sees about a user: no content, no hash."""

    id: uuid.UUID
    email: str
    is_admin: bool
    auth_provider: str
    created_at: datetime
    quota_tokens_per_day: int | None
    quota_cost_per_month_usd: Decimal | None
    password_reset_required: bool = False


def _require_admin(session: Session, acting_user_id: uuid.UUID) -> None:
    acting = session.exec(select(User.is_admin).where(User.id == acting_user_id)).first()
    if not acting:
        log.warning("admin action refused id=%s", acting_user_id)
        raise NotAllowed("Only admins can do this.")


def grant_admin(*, acting_user_id: uuid.UUID, target_email: str) -> AuthUser:
    """Make the user with ``target_email`` an admin. Raises ``NotAllowed`` / ``NotFound``."""
    try:
        address = EmailIn(email=target_email).email
    except ValidationError as exc:
        raise AuthError(field_errors(exc)["email"], field="email") from None
    with system_session() as s:
        _require_admin(s, acting_user_id)
        target = s.exec(select(User).where(User.email == address)).first()
        if target is None:
            raise NotFound("user")
        target.is_admin = True
        s.add(target)
        s.flush()
        result = AuthUser.of(target)
    log.info("admin granted by=%s to=%s", acting_user_id, result.id)
    return result


def list_users(*, acting_user_id: uuid.UUID) -> list[UserSummary]:
    """Every account (admin only): identity, role, quota overrides — no content."""
    with system_session() as s:
        _require_admin(s, acting_user_id)
        users = s.exec(select(User).order_by(col(User.created_at), col(User.email))).all()
        return [
            UserSummary(
                id=u.id,
                email=u.email,
                is_admin=u.is_admin,
                auth_provider=u.auth_provider,
                created_at=u.created_at,
                quota_tokens_per_day=u.quota_tokens_per_day,
                quota_cost_per_month_usd=(
                    Decimal(u.quota_cost_per_month_usd) if u.quota_cost_per_month_usd is not None else None
                ),
                password_reset_required=u.password_reset_required,
            )
            for u in users
        ]


def set_quota_override(*, acting_user_id: uuid.UUID, data: QuotaOverrideIn) -> None:
    """Set (or, with ``None``, clear) a user's quota overrides. Admin only."""
    with system_session() as s:
        _require_admin(s, acting_user_id)
        result = s.execute(
            update(User)
            .where(col(User.id) == data.user_id)
            .values(
                quota_tokens_per_day=data.tokens_per_day,
                quota_cost_per_month_usd=data.cost_per_month_usd,
            )
        )
        if getattr(result, "rowcount", 0) != 1:
            raise NotFound("user")
    log.info("quota override set by=%s for=%s", acting_user_id, data.user_id)


def force_password_reset(*, acting_user_id: uuid.UUID, target_user_id: uuid.UUID) -> IssuedCode:
    """Force ``target_user_id`` to set a new password (admin only): their password stops signing
    in, every session of theirs is revoked, and a one-time code is issued for the admin to hand
    over (``core.reset_codes``). Raises ``NotAllowed``, ``NotFound``, or ``AuthError`` for an
    account without a password (single sign-on) or the admin's own (changed on the Account page)."""
    if target_user_id == acting_user_id:
        raise AuthError("Change your own password on the Account page.")
    with system_session() as s:
        _require_admin(s, acting_user_id)
        target = s.exec(select(User).where(col(User.id) == target_user_id)).first()
        if target is None:
            raise NotFound("user")
        if target.auth_provider != "local":
            raise AuthError("This account signs in through the identity provider: it has no password here.")
        issued = issue_code(s, target)
    revoked = revoke_user_sessions(target_user_id)
    log.info("password reset forced by=%s for=%s, sessions revoked: %d", acting_user_id, target_user_id, revoked)
    return issued
