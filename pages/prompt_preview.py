"""Prompt preview: the exact system prompt the advisor receives, where each part came from, how
answers from it did (the figures of its prompt version), and a "what if" panel that diffs it against
a changed role, stack, vertical, vibe or agent (nothing saved), the two versions' figures side by side.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from pydantic import ValidationError

from core import profiles
from core.analytics import PromptVersions
from core.assembler import AssembledPrompt, assemble_prompt, diff_prompts
from core.atoms import AtomLibrary, app_atoms
from models import SLIDERS
from models.schemas import MAX_ROLE, ROLES, STACK_SUGGESTIONS, VERTICALS, ProfileIn, VibeIn, error_lines
from ui.frame import page
from ui.prompt_versions import side_by_side, user_versions, version_tiles
from ui.text import typing_limit

OTHER_ROLE = "Other"
NO_VERTICAL = ""
LABELS = {
    "playfulness": "Playfulness",
    "revenue_focus": "Revenue focus",
    "technical_depth": "Technical depth",
    "brevity": "Brevity",
    "formality": "Formality",
}
WHAT_IF_KEYS = (
    "pp_wi_role",
    "pp_wi_role_other",
    "pp_wi_stack",
    "pp_wi_vertical",
    "pp_wi_agent",
    *(f"pp_wi_{name}" for name in SLIDERS),
)


def _show_prompt(prompt: AssembledPrompt) -> None:
    chars = len(prompt.text)
    c1, c2, c3 = st.columns(3)
    c1.metric("Characters", f"{chars:,}")
    c2.metric("Tokens (≈ chars/4)", f"{(chars + 3) // 4:,}")
    c3.metric("Atoms", len(prompt.atoms))
    st.caption("sha256 — stored with every answer, so any answer can be traced to this prompt")
    st.code(prompt.sha256, language=None)
    st.code(prompt.text, language="markdown", wrap_lines=True)
    with st.expander("Atoms that applied, and why", expanded=False):
        st.dataframe(
            [{"atom": s.atom_id, "version": s.version, "why": s.why} for s in prompt.sections],
            hide_index=True,
            width="stretch",
            key="pp_atoms_table",
        )


def _init_what_if(profile: ProfileIn, vibe: VibeIn, agent: str) -> None:
    ss = st.session_state
    if "pp_wi_role" in ss:
        return
    ss["pp_wi_role"] = profile.role if profile.role in ROLES else OTHER_ROLE
    ss["pp_wi_role_other"] = "" if profile.role in ROLES else profile.role
    ss["pp_wi_stack"] = list(profile.stack)
    ss["pp_wi_vertical"] = profile.vertical
    ss["pp_wi_agent"] = agent
    for name, value in vibe.sliders().items():
        ss[f"pp_wi_{name}"] = value


def _reset_what_if() -> None:
    for key in WHAT_IF_KEYS:
        st.session_state.pop(key, None)


def _what_if(
    current: AssembledPrompt, profile: ProfileIn, vibe: VibeIn, library: AtomLibrary, versions: PromptVersions
) -> None:
    st.header("What if…")
    st.caption("Change anything below to see how the prompt would differ. Nothing is saved.")
    _init_what_if(profile, vibe, current.agent)
    agents = {atom_id: title for atom_id, title, _ in library.agents()}
    left, right = st.columns(2)
    with left:
        role = st.selectbox("Role", [*ROLES, OTHER_ROLE], key="pp_wi_role")
        other = ""
        if role == OTHER_ROLE:
            other = st.text_input("Your role", key="pp_wi_role_other", max_chars=typing_limit(MAX_ROLE))
        stack_now = st.session_state.get("pp_wi_stack", [])
        custom = [s for s in stack_now if s not in STACK_SUGGESTIONS]
        stack = st.multiselect(
            "Stack", [*STACK_SUGGESTIONS, *custom], key="pp_wi_stack", accept_new_options=True
        )
        vertical_now = st.session_state.get("pp_wi_vertical", NO_VERTICAL)
        vertical_options = [NO_VERTICAL, *VERTICALS]
        if vertical_now not in vertical_options:
            vertical_options.append(vertical_now)
        vertical = st.selectbox(
            "Vertical", vertical_options, key="pp_wi_vertical", format_func=lambda v: v or "(none)"
        )
        agent = st.selectbox("Advisor mode", list(agents), key="pp_wi_agent", format_func=agents.__getitem__)
    with right:
        sliders = {name: st.slider(LABELS[name], 0, 10, key=f"pp_wi_{name}") for name in SLIDERS}
    st.button("Reset to my current settings", key="pp_wi_reset", on_click=_reset_what_if)

    try:
        alt_profile = ProfileIn(
            role=other if role == OTHER_ROLE else role, stack=list(stack), vertical=vertical or ""
        )
        alt_vibe = VibeIn(name=vibe.name, **sliders)
    except ValidationError as exc:
        for line in error_lines(exc):
            st.error(line)
        return
    alternative = assemble_prompt(alt_profile, alt_vibe, library, agent=agent)
    diff = diff_prompts(current, alternative)
    if not diff:
        st.info("Same prompt as now.", icon=":material/check:")
        return
    before, after = set(current.atoms), set(alternative.atoms)
    added = ", ".join(f"{a} v{v}" for a, v in sorted(after - before)) or "none"
    removed = ", ".join(f"{a} v{v}" for a, v in sorted(before - after)) or "none"
    st.markdown(f"**Atoms added:** {added}  \n**Atoms removed:** {removed}")
    st.caption(f"sha256 of the what-if prompt: `{alternative.sha256}` · {len(alternative.text):,} characters")
    st.markdown("**The two versions side by side**")
    st.table(
        side_by_side(
            {
                f"Now ({current.sha256[:12]})": versions.prompt(current.sha256),
                f"What if ({alternative.sha256[:12]})": versions.prompt(alternative.sha256),
            }
        )
    )
    st.caption("Figures of your answers from each exact prompt, all time; — where none came from it yet.")
    st.code(diff, language="diff")


with page("prompt_preview") as user:
    st.title("Prompt preview")
    st.caption("The exact system prompt the advisor receives, assembled from your profile and active vibe.")
    saved = profiles.get_profile(user_id=user.id)
    if saved is None:
        st.info("Save your profile first — the prompt is built from it.", icon=":material/info:")
        st.page_link(Path(__file__).with_name("vibe.py"), label="Go to Profile & vibe", icon=":material/tune:")
        st.stop()
    active = profiles.active_vibe(user_id=user.id)
    library = app_atoms()
    agent_titles = {atom_id: title for atom_id, title, _ in library.agents()}
    chosen = st.selectbox(
        "Advisor mode",
        list(agent_titles),
        key="pp_agent",
        format_func=agent_titles.__getitem__,
        on_change=_reset_what_if,  # the "What if…" panel compares against the prompt shown above
    )
    st.text(f"Active vibe: {active.name}")  # user text: plain text, never Markdown
    current = assemble_prompt(saved, active, library, agent=chosen)
    _show_prompt(current)
    versions = user_versions(user.id)
    st.header("How answers from this prompt did")
    version_tiles(versions.prompt(current.sha256))
    st.divider()
    _what_if(current, saved, active, library, versions)
