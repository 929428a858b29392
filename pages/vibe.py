"""Profile & vibe: who you are (role, stack, vertical) and how the advisor should sound.

Several named vibe configs per user, one active (the chat uses the active one). Sliders can start
from a preset; the vibe section of the system prompt is previewed live as they move.
"""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st
from pydantic import ValidationError

from core import profiles
from core.db import NotFound
from models import SLIDERS
from models.schemas import (
    MAX_ROLE,
    MAX_VIBE_NAME,
    ROLES,
    STACK_SUGGESTIONS,
    VERTICALS,
    ProfileIn,
    VibeIn,
    field_errors,
)
from ui.frame import page
from ui.text import literal, typing_limit

OTHER_ROLE = "Other"
NEW = "new"
LABELS = {
    "playfulness": "Playfulness",
    "revenue_focus": "Revenue focus",
    "technical_depth": "Technical depth",
    "brevity": "Brevity",
    "formality": "Formality",
}
FLASH = "vibe_flash"
SELECT_NEXT = "vibe_select_next"


def _init_profile_state(saved: ProfileIn | None) -> None:
    ss = st.session_state
    if "profile_role" not in ss:
        role = saved.role if saved else ""
        ss["profile_role"] = role if role in ROLES else (OTHER_ROLE if role else None)
        ss["profile_role_other"] = "" if role in ROLES else role
    ss.setdefault("profile_role_other", "")
    if "profile_stack" not in ss:
        ss["profile_stack"] = list(saved.stack) if saved else []
    if "profile_vertical" not in ss:
        ss["profile_vertical"] = saved.vertical if saved and saved.vertical in VERTICALS else None


def _load_vibe_into_state(vibe: VibeIn) -> None:
    st.session_state["vibe_name"] = vibe.name
    for name, value in vibe.sliders().items():
        st.session_state[f"vibe_{name}"] = value


def _on_select(vibes_by_id: dict[str, VibeIn]) -> None:
    chosen = st.session_state.get("vibe_selected")
    _load_vibe_into_state(vibes_by_id.get(str(chosen), VibeIn(name="New vibe")))
    st.session_state["vibe_preset"] = None


def _on_preset() -> None:
    preset = st.session_state.get("vibe_preset")
    if isinstance(preset, str) and preset in profiles.PRESETS:
        for name, value in profiles.PRESETS[preset].items():
            st.session_state[f"vibe_{name}"] = value
    # applied once: the box goes back to "Presets", so the same preset can be applied again later
    st.session_state["vibe_preset"] = None


def _profile_form(user_id: uuid.UUID) -> None:
    _init_profile_state(profiles.get_profile(user_id=user_id))
    role = st.selectbox(
        "Role", [*ROLES, OTHER_ROLE], key="profile_role", index=None, placeholder="Choose your role"
    )
    role_error = st.empty()
    other = ""
    if role == OTHER_ROLE:
        other = st.text_input("Your role", key="profile_role_other", max_chars=typing_limit(MAX_ROLE))
    custom = [s for s in st.session_state.get("profile_stack", []) if s not in STACK_SUGGESTIONS]
    stack = st.multiselect(
        "Stack",
        [*STACK_SUGGESTIONS, *custom],
        key="profile_stack",
        accept_new_options=True,
        placeholder="Pick or type technologies",
    )
    stack_error = st.empty()
    vertical = st.selectbox(
        "Vertical", VERTICALS, key="profile_vertical", index=None, placeholder="Choose your vertical"
    )
    vertical_error = st.empty()
    if st.button("Save profile", key="save_profile", type="primary"):
        slots = {"role": role_error, "stack": stack_error, "vertical": vertical_error}
        try:
            data = ProfileIn(
                role=other if role == OTHER_ROLE else (role or ""),
                stack=list(stack),
                vertical=vertical or "",
            )
        except ValidationError as exc:
            for field, message in field_errors(exc).items():
                slots.get(field, role_error).error(message)
            return
        profiles.save_profile(user_id=user_id, data=data)
        st.success("Profile saved.", icon=":material/check:")


def _vibe_preview(vibe: VibeIn) -> None:
    try:
        from core.assembler import vibe_section
        from core.atoms import app_atoms

        text = vibe_section(vibe, app_atoms())
    except Exception:  # atoms missing or malformed: show the values instead
        text = ""
    st.caption("The vibe part of the system prompt, as the sliders stand:")
    body = text or "\n".join(f"{LABELS[k]}: {v}/10" for k, v in vibe.sliders().items())
    st.code(body, language="markdown", wrap_lines=True)


def _vibe_editor(user_id: uuid.UUID) -> None:
    ss = st.session_state
    rows = profiles.list_vibes(user_id=user_id)
    vibes = {str(r.id): profiles.vibe_in(r) for r in rows}
    active = next((str(r.id) for r in rows if r.is_active), None)
    labels = {str(r.id): r.name + (" · active" if r.is_active else "") for r in rows}
    labels[NEW] = "+ New vibe"

    pending = ss.pop(SELECT_NEXT, None)
    if pending is not None or ss.get("vibe_selected") not in labels:
        ss["vibe_selected"] = pending if pending in labels else (active or NEW)
        _on_select(vibes)
    elif any(f"vibe_{n}" not in ss for n in SLIDERS) or "vibe_name" not in ss:
        _on_select(vibes)

    selected = st.selectbox(
        "Vibe config",
        list(labels),
        key="vibe_selected",
        format_func=lambda k: labels.get(k, k),
        on_change=_on_select,
        args=(vibes,),
    )
    st.selectbox(
        "Start from a preset",
        list(profiles.PRESETS),
        key="vibe_preset",
        index=None,
        placeholder="Presets",
        on_change=_on_preset,
    )
    name = st.text_input("Name", key="vibe_name", max_chars=typing_limit(MAX_VIBE_NAME))
    slots: dict[str, Any] = {"name": st.empty()}
    values: dict[str, int] = {}
    for slider in SLIDERS:
        values[slider] = st.slider(LABELS[slider], 0, 10, key=f"vibe_{slider}")
        slots[slider] = st.empty()

    try:
        vibe = VibeIn(name=name, **values)
    except ValidationError as exc:
        vibe = None
        for field, message in field_errors(exc).items():
            slots.get(field, slots["name"]).error(message)
    if vibe is not None:
        _vibe_preview(vibe)

    cols = st.columns(3)
    save = cols[0].button("Save", key="vibe_save", type="primary", disabled=vibe is None)
    activate = cols[1].button("Make active", key="vibe_activate", disabled=selected in (NEW, active))
    delete = cols[2].button("Delete", key="vibe_delete", disabled=selected == NEW)
    try:
        if save and vibe is not None:
            row = profiles.save_vibe(
                user_id=user_id, data=vibe, vibe_id=None if selected == NEW else uuid.UUID(selected)
            )
            ss[SELECT_NEXT], ss[FLASH] = str(row.id), f"Saved “{literal(row.name)}”."
            st.rerun()
        if activate and selected != NEW:
            row = profiles.activate_vibe(user_id=user_id, vibe_id=uuid.UUID(selected))
            ss[SELECT_NEXT], ss[FLASH] = str(row.id), f"“{literal(row.name)}” is now the active vibe."
            st.rerun()
        if delete and selected != NEW:
            profiles.delete_vibe(user_id=user_id, vibe_id=uuid.UUID(selected))
            ss[SELECT_NEXT], ss[FLASH] = "", "Vibe deleted."  # "": select the active one
            st.rerun()
    except profiles.VibeNameTaken as exc:
        slots["name"].error(str(exc))
    except NotFound:
        st.error("That vibe no longer exists.")


with page("vibe") as user:
    st.title("Profile & vibe")
    flash = st.session_state.pop(FLASH, None)
    if isinstance(flash, str):
        st.success(flash, icon=":material/check:")
    left, right = st.columns([2, 3], gap="large")
    with left:
        st.header("Your profile")
        _profile_form(user.id)
    with right:
        st.header("Your vibe")
        _vibe_editor(user.id)
