"""The Profile & vibe page: save, reload, switch active config, field errors change nothing."""

from __future__ import annotations

from sqlmodel import select

from core import profiles
from core.assembler import vibe_section
from core.atoms import load_atoms
from core.db import system_session
from models import UserProfile, VibeConfig
from models.schemas import ProfileIn, VibeIn

PAGE = "pages/vibe.py"


def _profile(user_id) -> UserProfile | None:
    with system_session() as s:
        return s.exec(select(UserProfile).where(UserProfile.user_id == user_id)).first()


def _vibes(user_id) -> list[VibeConfig]:
    with system_session() as s:
        return list(s.exec(select(VibeConfig).where(VibeConfig.user_id == user_id)).all())


def test_profile_save_and_reload(app) -> None:
    at = app(PAGE)
    user = at.advisor_user
    assert not at.exception
    at.selectbox(key="profile_role").set_value("CTO")
    at.multiselect(key="profile_stack").set_value(["Python", "Elixir"])  # Elixir: a new option
    at.selectbox(key="profile_vertical").set_value("Fintech")
    at.button(key="save_profile").click().run()
    assert not at.error and [s.value for s in at.success] == ["Profile saved."]
    row = _profile(user.id)
    assert row is not None and (row.role, row.stack, row.vertical) == ("CTO", ["Python", "Elixir"], "Fintech")

    again = app(PAGE, user=user)  # a new session shows the saved values
    assert again.selectbox(key="profile_role").value == "CTO"
    assert again.multiselect(key="profile_stack").value == ["Python", "Elixir"]
    assert again.selectbox(key="profile_vertical").value == "Fintech"


def test_other_role_text(app) -> None:
    at = app(PAGE)
    user = at.advisor_user
    at.selectbox(key="profile_role").set_value("Other").run()
    at.button(key="save_profile").click().run()  # "Other" with no text
    assert [e.value for e in at.error] == ["Choose a role, or describe yours under 'Other' (at most 60 characters)."]
    assert _profile(user.id) is None
    at.text_input(key="profile_role_other").input("x" * 61)
    at.button(key="save_profile").click().run()  # over-long
    assert len(at.error) == 1 and "60" in at.error[0].value
    assert _profile(user.id) is None
    at.text_input(key="profile_role_other").input("Head of Platform")
    at.button(key="save_profile").click().run()
    saved = _profile(user.id)
    assert not at.error and saved is not None and saved.role == "Head of Platform"
    reloaded = app(PAGE, user=user)
    assert reloaded.selectbox(key="profile_role").value == "Other"
    assert reloaded.text_input(key="profile_role_other").value == "Head of Platform"


def test_vibe_preset_preview_save_and_switch_active(app) -> None:
    at = app(PAGE)
    user = at.advisor_user
    at.selectbox(key="vibe_preset").set_value("Board update").run()
    sliders = {k: at.slider(key=f"vibe_{k}").value for k in profiles.PRESETS["Board update"]}
    assert sliders == profiles.PRESETS["Board update"]
    expected = vibe_section(VibeIn(name="x", **sliders), load_atoms())
    assert [c.value for c in at.code] == [expected or at.code[0].value]
    before = at.code[0].value
    at.slider(key="vibe_playfulness").set_value(10)
    at.slider(key="vibe_brevity").set_value(0).run()  # the preview follows the sliders
    moved = {**sliders, "playfulness": 10, "brevity": 0}
    assert at.code[0].value == (vibe_section(VibeIn(name="x", **moved), load_atoms()) or at.code[0].value)
    assert at.code[0].value != before

    at.text_input(key="vibe_name").input("Board")
    at.button(key="vibe_save").click().run()
    assert not at.exception and not at.error
    (board,) = _vibes(user.id)
    assert (board.name, board.playfulness, board.brevity, board.is_active) == ("Board", 10, 0, True)

    at.selectbox(key="vibe_selected").set_value("new").run()
    at.selectbox(key="vibe_preset").set_value("Deep dive").run()
    at.text_input(key="vibe_name").input("Deep")
    at.button(key="vibe_save").click().run()
    rows = {r.name: r for r in _vibes(user.id)}
    assert set(rows) == {"Board", "Deep"} and rows["Board"].is_active and not rows["Deep"].is_active
    assert at.selectbox(key="vibe_selected").value == str(rows["Deep"].id)

    at.button(key="vibe_activate").click().run()
    rows = {r.name: r for r in _vibes(user.id)}
    assert [n for n, r in rows.items() if r.is_active] == ["Deep"]
    assert profiles.active_vibe(user_id=user.id).name == "Deep"

    at.selectbox(key="vibe_selected").set_value(str(rows["Board"].id)).run()
    assert at.text_input(key="vibe_name").value == "Board" and at.slider(key="vibe_playfulness").value == 10
    at.text_input(key="vibe_name").input("Deep")  # rename onto an existing name
    at.button(key="vibe_save").click().run()
    assert any("already have a vibe named" in e.value for e in at.error)
    assert sorted(r.name for r in _vibes(user.id)) == ["Board", "Deep"]
    at.text_input(key="vibe_name").input("Board room")  # rename
    at.button(key="vibe_save").click().run()
    assert sorted(r.name for r in _vibes(user.id)) == ["Board room", "Deep"]

    at.button(key="vibe_delete").click().run()
    (left,) = _vibes(user.id)
    assert left.name == "Deep" and left.is_active


def test_bad_vibe_name_is_a_field_error_and_saves_nothing(app) -> None:
    at = app(PAGE)
    user = at.advisor_user
    at.text_input(key="vibe_name").input("n" * 61).run()
    assert len(at.error) == 1 and "60" in at.error[0].value
    assert at.button(key="vibe_save").disabled  # cannot be saved while invalid
    assert _vibes(user.id) == []
    at.text_input(key="vibe_name").input("   ").run()
    assert len(at.error) == 1 and _vibes(user.id) == []


def test_page_only_shows_own_data(app) -> None:
    owner = app(PAGE)
    profiles.save_profile(user_id=owner.advisor_user.id, data=ProfileIn(role="Founder", stack=["Go"]))
    profiles.save_vibe(user_id=owner.advisor_user.id, data=VibeIn(name="Secret vibe"))
    other = app(PAGE)
    assert other.selectbox(key="profile_role").value is None
    assert other.selectbox(key="vibe_selected").options == ["+ New vibe"]


def test_a_preset_can_be_applied_again_after_switching_vibe(app):
    """The preset box goes back to "Presets" once applied: choosing the same preset for another vibe
    applies it again (the box used to keep it, so choosing it fired nothing)."""
    from tests.ui.conftest import create_signed_in_user

    user = create_signed_in_user()
    profiles.save_vibe(user_id=user.id, data=VibeIn(name="A", playfulness=0, brevity=0))
    b = profiles.save_vibe(user_id=user.id, data=VibeIn(name="B", playfulness=0, brevity=0))
    at = app(PAGE, user=user)
    at.selectbox(key="vibe_preset").set_value("Board update").run()
    assert at.slider(key="vibe_brevity").value == 8 and at.selectbox(key="vibe_preset").value is None
    at.selectbox(key="vibe_selected").set_value(str(b.id)).run()
    assert at.slider(key="vibe_brevity").value == 0
    at.selectbox(key="vibe_preset").set_value("Board update").run()
    assert not at.exception and at.slider(key="vibe_brevity").value == 8
