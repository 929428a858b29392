"""Profiles and vibe configs: save/reload, one active, validation, ownership (C1 app level, C3)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError
from sqlmodel import select

from core import profiles
from core.db import NotFound, system_session
from models import SLIDERS, UserProfile, VibeConfig
from models.schemas import ProfileIn, VibeIn, field_errors
from tests.factories import make_user


def _rows(user_id: uuid.UUID) -> list[VibeConfig]:
    with system_session() as s:
        return list(s.exec(select(VibeConfig).where(VibeConfig.user_id == user_id)).all())


def test_profile_save_and_reload(any_db_url: str) -> None:
    user = make_user()
    assert profiles.get_profile(user_id=user) is None
    data = ProfileIn(role="CTO", stack=["Python", "python", "Elixir"], vertical="Fintech")
    profiles.save_profile(user_id=user, data=data)
    got = profiles.get_profile(user_id=user)
    assert got == ProfileIn(role="CTO", stack=["Python", "Elixir"], vertical="Fintech")
    profiles.save_profile(user_id=user, data=ProfileIn(role="Head of Platform", stack=[], vertical=""))
    assert profiles.get_profile(user_id=user) == ProfileIn(role="Head of Platform")
    assert profiles.get_profile(user_id=make_user()) is None  # another user sees nothing


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"role": ""}, "role"),
        ({"role": "x" * 61}, "role"),
        ({"role": "CTO", "stack": ["x" * 41]}, "stack"),
        ({"role": "CTO", "stack": [f"t{i}" for i in range(21)]}, "stack"),
        ({"role": "CTO", "vertical": "v" * 61}, "vertical"),
    ],
)
def test_bad_profile_is_a_field_error(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ProfileIn(**values)
    assert field in field_errors(info.value)


@pytest.mark.parametrize(
    ("values", "field"),
    [({"playfulness": 11}, "playfulness"), ({"brevity": -1}, "brevity"), ({"name": "n" * 61}, "name")],
)
def test_bad_vibe_is_a_field_error(values: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        VibeIn(**values)
    assert field in field_errors(info.value)


def test_first_vibe_is_active_and_activation_switches(any_db_url: str) -> None:
    user = make_user()
    assert profiles.active_vibe(user_id=user) == VibeIn()
    board = profiles.save_vibe(user_id=user, data=VibeIn(name="Board", **profiles.PRESETS["Board update"]))
    deep = profiles.save_vibe(user_id=user, data=VibeIn(name="Deep", **profiles.PRESETS["Deep dive"]))
    assert board.is_active and not deep.is_active
    assert profiles.active_vibe(user_id=user).name == "Board"
    profiles.activate_vibe(user_id=user, vibe_id=deep.id)
    assert [r.name for r in _rows(user) if r.is_active] == ["Deep"]
    active = profiles.active_vibe(user_id=user)
    assert active == VibeIn(name="Deep", **profiles.PRESETS["Deep dive"])
    profiles.activate_vibe(user_id=user, vibe_id=deep.id)  # idempotent
    assert [r.name for r in _rows(user) if r.is_active] == ["Deep"]
    assert [v.name for v in profiles.list_vibes(user_id=user)] == ["Deep", "Board"]


def test_update_rename_and_unique_name(any_db_url: str) -> None:
    user = make_user()
    a = profiles.save_vibe(user_id=user, data=VibeIn(name="A"))
    profiles.save_vibe(user_id=user, data=VibeIn(name="B"))
    with pytest.raises(profiles.VibeNameTaken, match="already have a vibe named"):
        profiles.save_vibe(user_id=user, data=VibeIn(name="B"))
    with pytest.raises(profiles.VibeNameTaken):
        profiles.save_vibe(user_id=user, data=VibeIn(name="B"), vibe_id=a.id)
    renamed = profiles.save_vibe(user_id=user, data=VibeIn(name="A2", brevity=9), vibe_id=a.id)
    assert renamed.id == a.id
    stored = {r.name: r for r in _rows(user)}
    assert set(stored) == {"A2", "B"} and stored["A2"].brevity == 9
    profiles.save_vibe(user_id=make_user(), data=VibeIn(name="A2"))  # names are per user


def test_delete_active_promotes_another(any_db_url: str) -> None:
    user = make_user()
    a = profiles.save_vibe(user_id=user, data=VibeIn(name="A"))
    b = profiles.save_vibe(user_id=user, data=VibeIn(name="B"))
    profiles.delete_vibe(user_id=user, vibe_id=a.id)
    rows = _rows(user)
    assert [(r.id, r.is_active) for r in rows] == [(b.id, True)]
    profiles.delete_vibe(user_id=user, vibe_id=b.id)
    assert _rows(user) == [] and profiles.active_vibe(user_id=user) == VibeIn()


def test_another_users_vibe_id_is_not_found(any_db_url: str) -> None:
    owner = make_user()
    intruder = make_user()
    theirs = profiles.save_vibe(user_id=owner, data=VibeIn(name="Mine", playfulness=1))
    profiles.save_vibe(user_id=intruder, data=VibeIn(name="Own"))
    with pytest.raises(NotFound):
        profiles.get_vibe(user_id=intruder, vibe_id=theirs.id)
    with pytest.raises(NotFound):
        profiles.save_vibe(user_id=intruder, data=VibeIn(name="Hijack", playfulness=10), vibe_id=theirs.id)
    with pytest.raises(NotFound):
        profiles.activate_vibe(user_id=intruder, vibe_id=theirs.id)
    with pytest.raises(NotFound):
        profiles.delete_vibe(user_id=intruder, vibe_id=theirs.id)
    with pytest.raises(NotFound):
        profiles.activate_vibe(user_id=owner, vibe_id=uuid.uuid4())
    (row,) = _rows(owner)
    assert (row.name, row.playfulness, row.is_active) == ("Mine", 1, True)
    assert [r.name for r in _rows(intruder)] == ["Own"] and _rows(intruder)[0].is_active


def test_presets_are_valid_vibes() -> None:
    assert {"Board update", "Pair programmer", "Exec brief", "Hiring manager", "Deep dive"} <= set(
        profiles.PRESETS
    )
    for name, values in profiles.PRESETS.items():
        assert set(values) == set(SLIDERS)
        VibeIn(name=name, **values)


def test_profile_rows_are_scoped(any_db_url: str) -> None:
    a, b = make_user(), make_user()
    profiles.save_profile(user_id=a, data=ProfileIn(role="CTO"))
    profiles.save_profile(user_id=b, data=ProfileIn(role="Founder"))
    with system_session() as s:
        roles = {p.user_id: p.role for p in s.exec(select(UserProfile)).all()}
    assert roles == {a: "CTO", b: "Founder"}


def test_two_first_vibes_saved_at_once_are_both_saved(any_db_url: str, monkeypatch) -> None:
    """Two tabs save a user's first vibe at the same moment: both found no active vibe, so both try
    to insert an active one. The one-active index refuses the second, which is saved again as an
    inactive vibe; it used to be refused as if its name were taken."""
    import threading

    from models.types import utcnow as real_utcnow

    barrier = threading.Barrier(2, timeout=10)
    calls = {"n": 0}
    lock = threading.Lock()
    def utcnow_after_both_checked():  # called after the active-vibe check, before the INSERT
        with lock:
            calls["n"] += 1
            first_two = calls["n"] <= 2
        if first_two:
            barrier.wait()
        return real_utcnow()

    monkeypatch.setattr("core.profiles.utcnow", utcnow_after_both_checked)
    user = make_user()
    errors: list[BaseException] = []

    def save(name: str) -> None:
        try:
            profiles.save_vibe(user_id=user, data=VibeIn(name=name))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(name,)) for name in ("From tab one", "From tab two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    rows = _rows(user)
    assert sorted(r.name for r in rows) == ["From tab one", "From tab two"]
    assert sum(r.is_active for r in rows) == 1
