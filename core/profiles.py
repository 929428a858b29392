"""A user's profile (role, stack, vertical) and vibe configs (several, exactly one active).

Every function runs in ``user_session(user_id)`` and filters by ``user_id``: an id that belongs to
another user is indistinguishable from one that does not exist (``core.db.NotFound``, claim C3).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.db import NotFound, user_session
from models import SLIDERS, UserProfile, VibeConfig
from models.schemas import ProfileIn, VibeIn
from models.types import utcnow

__all__ = [
    "PRESETS",
    "VibeNameTaken",
    "activate_vibe",
    "active_vibe",
    "delete_vibe",
    "get_profile",
    "get_vibe",
    "list_vibes",
    "save_profile",
    "save_vibe",
    "vibe_in",
]

log = logging.getLogger("advisor.profiles")

# Named slider presets, values in SLIDERS order:
# (playfulness, revenue_focus, technical_depth, brevity, formality).
_PRESET_VALUES: Final[dict[str, tuple[int, int, int, int, int]]] = {
    "Board update": (1, 9, 2, 8, 9),
    "Pair programmer": (5, 1, 10, 6, 2),
    "Exec brief": (2, 7, 3, 10, 8),
    "Hiring manager": (4, 4, 5, 5, 6),
    "Deep dive": (2, 3, 10, 1, 5),
    "Friendly mentor": (7, 3, 6, 4, 2),
}
PRESETS: Final[dict[str, dict[str, int]]] = {
    name: dict(zip(SLIDERS, values, strict=True)) for name, values in _PRESET_VALUES.items()
}


class VibeNameTaken(ValueError):
    """The user already has a vibe with this name; ``field`` is ``name``."""

    field = "name"


# ------------------------------------------------------------------------------------------------
# profile
# ------------------------------------------------------------------------------------------------
def get_profile(*, user_id: uuid.UUID) -> ProfileIn | None:
    """The saved profile, or None when the user has not saved one yet."""
    with user_session(user_id) as s:
        row = s.exec(select(UserProfile).where(UserProfile.user_id == user_id)).first()
        if row is None:
            return None
        role, stack, vertical = row.role, list(row.stack or []), row.vertical
    return profile_in(role=role, stack=stack, vertical=vertical)


def profile_in(*, role: str, stack: list[str], vertical: str) -> ProfileIn:
    """The input-model view of stored profile values: what the preview shows and a chat turn sends.

    Values stored before a rule tightened are taken as they are (the form re-validates on save).
    """
    try:
        return ProfileIn(role=role, stack=stack, vertical=vertical)
    except ValidationError:
        return ProfileIn.model_construct(role=role, stack=stack, vertical=vertical)


def save_profile(*, user_id: uuid.UUID, data: ProfileIn) -> ProfileIn:
    """Create or replace the user's profile."""
    with user_session(user_id) as s:
        row = s.exec(select(UserProfile).where(UserProfile.user_id == user_id)).first()
        if row is None:
            row = UserProfile(user_id=user_id)
        row.role = data.role
        row.stack = list(data.stack)
        row.vertical = data.vertical
        row.updated_at = utcnow()
        s.add(row)
    log.info("profile saved user=%s", user_id)
    return data


# ------------------------------------------------------------------------------------------------
# vibes
# ------------------------------------------------------------------------------------------------
def vibe_in(row: VibeConfig) -> VibeIn:
    """The input-model view of a stored vibe config."""
    return vibe_from_values({"name": row.name, **{k: getattr(row, k) for k in SLIDERS}})


def vibe_from_values(values: dict[str, Any]) -> VibeIn:
    """The input-model view of stored vibe values (taken as they are when a rule has tightened since)."""
    try:
        return VibeIn.model_validate(values)
    except ValidationError:
        return VibeIn.model_construct(**values)


def list_vibes(*, user_id: uuid.UUID) -> list[VibeConfig]:
    """The user's vibe configs, active first, then by name."""
    with user_session(user_id) as s:
        rows = s.exec(
            select(VibeConfig)
            .where(VibeConfig.user_id == user_id)
            .order_by(col(VibeConfig.is_active).desc(), col(VibeConfig.name))
        ).all()
        return list(rows)


def _owned(s: Session, user_id: uuid.UUID, vibe_id: uuid.UUID) -> VibeConfig:
    row = s.exec(select(VibeConfig).where(VibeConfig.id == vibe_id, VibeConfig.user_id == user_id)).first()
    if row is None:
        raise NotFound("vibe config")
    return row


def get_vibe(*, user_id: uuid.UUID, vibe_id: uuid.UUID) -> VibeConfig:
    with user_session(user_id) as s:
        return _owned(s, user_id, vibe_id)


def _name_taken(name: str) -> VibeNameTaken:
    return VibeNameTaken(f"You already have a vibe named “{name}”; pick another name.")


def _second_active(exc: IntegrityError) -> bool:
    """Whether ``exc`` is the one-active-vibe index refusing a second active vibe. PostgreSQL names
    the index; SQLite names its columns (only ``user_id``; the name constraint adds ``name``)."""
    name = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
    if name is not None:
        return bool(name == "uq_vibe_configs_one_active")
    return str(exc.orig).strip().endswith("UNIQUE constraint failed: vibe_configs.user_id")


def save_vibe(*, user_id: uuid.UUID, data: VibeIn, vibe_id: uuid.UUID | None = None) -> VibeConfig:
    """Create a vibe config (``vibe_id`` None) or update one of the user's. The first becomes active.

    Two first vibes saved at once (two tabs) both find no active vibe; the one-active index refuses
    the second, which is then saved again as an inactive one (not reported as a name clash).
    """
    for attempt in (1, 2):
        try:
            return _save_vibe(user_id, data, vibe_id)
        except IntegrityError as exc:
            if attempt == 1 and vibe_id is None and _second_active(exc):
                continue  # a concurrent first save became the active one: this one is saved inactive
            raise _name_taken(data.name) from None  # a concurrent save took the name
    raise AssertionError("unreachable")


def _save_vibe(user_id: uuid.UUID, data: VibeIn, vibe_id: uuid.UUID | None) -> VibeConfig:
    with user_session(user_id) as s:
        clash = s.exec(
            select(VibeConfig.id).where(VibeConfig.user_id == user_id, VibeConfig.name == data.name)
        ).first()
        if clash is not None and clash != vibe_id:
            raise _name_taken(data.name)
        if vibe_id is None:
            has_active = s.exec(
                select(VibeConfig.id).where(VibeConfig.user_id == user_id, col(VibeConfig.is_active))
            ).first()
            row = VibeConfig(user_id=user_id, name=data.name, is_active=has_active is None)
        else:
            row = _owned(s, user_id, vibe_id)
            row.name = data.name
        for key, value in data.sliders().items():
            setattr(row, key, value)
        row.updated_at = utcnow()
        s.add(row)
        s.flush()
    log.info("vibe saved user=%s vibe=%s", user_id, row.id)
    return row


def activate_vibe(*, user_id: uuid.UUID, vibe_id: uuid.UUID) -> VibeConfig:
    """Make ``vibe_id`` the user's one active vibe (the partial unique index keeps it to one)."""
    with user_session(user_id) as s:
        row = _owned(s, user_id, vibe_id)
        s.execute(
            update(VibeConfig)
            .where(
                col(VibeConfig.user_id) == user_id, col(VibeConfig.is_active), col(VibeConfig.id) != vibe_id
            )
            .values(is_active=False)
        )
        s.execute(
            update(VibeConfig)
            .where(col(VibeConfig.id) == vibe_id, col(VibeConfig.user_id) == user_id)
            .values(is_active=True)
        )
        s.refresh(row)
        return row


def delete_vibe(*, user_id: uuid.UUID, vibe_id: uuid.UUID) -> None:
    """Delete one of the user's vibes; if it was active, the most recently updated other becomes active."""
    with user_session(user_id) as s:
        row = _owned(s, user_id, vibe_id)
        was_active = row.is_active
        s.delete(row)
        s.flush()
        if was_active:
            nxt = s.exec(
                select(VibeConfig)
                .where(VibeConfig.user_id == user_id)
                .order_by(col(VibeConfig.updated_at).desc(), col(VibeConfig.name))
            ).first()
            if nxt is not None:
                nxt.is_active = True
                s.add(nxt)


def active_vibe(*, user_id: uuid.UUID) -> VibeIn:
    """The user's active vibe, or the defaults (``VibeIn()``) when there is none."""
    with user_session(user_id) as s:
        row = s.exec(
            select(VibeConfig).where(VibeConfig.user_id == user_id, col(VibeConfig.is_active))
        ).first()
        return vibe_in(row) if row is not None else VibeIn()
