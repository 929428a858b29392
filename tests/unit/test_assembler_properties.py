"""Property tests: assembly is a pure, order-insensitive, hash-seed-independent function."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from core.assembler import assemble_prompt
from core.atoms import DEFAULT_ATOMS_DIR, AtomLibrary, load_atoms
from models.schemas import ROLES, STACK_SUGGESTIONS, VERTICALS, ProfileIn, VibeIn
from models.vibe import SLIDERS

ROOT = Path(__file__).resolve().parents[2]
LIB = load_atoms()
AGENTS = [a[0] for a in LIB.agents()]

free_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Co", "Cn", "Cf", "Zl", "Zp")),
    min_size=1,
    max_size=40,
)
roles = st.one_of(st.sampled_from(ROLES), free_text)
verticals = st.one_of(st.sampled_from(VERTICALS), st.just(""), free_text)
stack_items = st.one_of(
    st.sampled_from(STACK_SUGGESTIONS), st.sampled_from(["react", "KAFKA", "Elm", "Zig"]), free_text
)
stacks = st.lists(stack_items, max_size=20, unique_by=lambda s: s.strip().casefold())
slider_values = st.fixed_dictionaries({name: st.integers(0, 10) for name in SLIDERS})


def build_profile(role: str, stack: list[str], vertical: str) -> ProfileIn:
    try:
        profile = ProfileIn(role=role, stack=stack, vertical=vertical)
    except ValidationError:
        assume(False)
        raise
    assume(len(profile.stack) == len(stack))  # no case-insensitive duplicates after normalisation
    return profile


@pytest.fixture(scope="module")
def fresh_library(tmp_path_factory: pytest.TempPathFactory) -> AtomLibrary:
    """The shipped atoms parsed again from a copy (a different directory, so no cache sharing)."""
    copy = tmp_path_factory.mktemp("atoms")
    for path in DEFAULT_ATOMS_DIR.glob("*.md"):
        shutil.copy(path, copy / path.name)
    library = load_atoms(copy)
    assert library is not LIB and library.content_hash == LIB.content_hash
    return library


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(roles, stacks, verticals, slider_values, st.sampled_from(AGENTS))
def test_same_inputs_same_bytes(
    fresh_library: AtomLibrary,
    role: str,
    stack: list[str],
    vertical: str,
    sliders: dict[str, int],
    agent: str,
) -> None:
    profile = build_profile(role, stack, vertical)
    first = assemble_prompt(profile, VibeIn(**sliders), LIB, agent=agent)
    # rebuilt inputs and a separately parsed library give identical bytes
    again = assemble_prompt(ProfileIn(**profile.model_dump()), VibeIn(**sliders), fresh_library, agent=agent)
    assert again.text.encode() == first.text.encode()
    assert again.sha256 == first.sha256
    assert again.atoms == first.atoms


@settings(max_examples=200, deadline=None)
@given(
    roles,
    stacks,
    verticals,
    slider_values,
    st.sampled_from(AGENTS),
    st.randoms(use_true_random=False),
)
def test_stack_order_and_dict_key_order_do_not_matter(
    role: str, stack: list[str], vertical: str, sliders: dict[str, int], agent: str, rnd: object
) -> None:
    import random

    assert isinstance(rnd, random.Random)
    profile = build_profile(role, stack, vertical)
    base = assemble_prompt(profile, VibeIn(**sliders), LIB, agent=agent)

    shuffled_stack = list(profile.stack)
    rnd.shuffle(shuffled_stack)
    profile_fields = [("role", profile.role), ("stack", shuffled_stack), ("vertical", profile.vertical)]
    rnd.shuffle(profile_fields)
    slider_items = list(sliders.items())
    rnd.shuffle(slider_items)
    other = assemble_prompt(
        ProfileIn.model_validate(dict(profile_fields)),
        VibeIn.model_validate(dict(slider_items)),
        LIB,
        agent=agent,
    )
    assert other.text == base.text
    assert other.sha256 == base.sha256
    assert other.atoms == base.atoms


BANDS = {3: ("low", "medium"), 6: ("medium", "high")}


@settings(max_examples=200, deadline=None)
@given(
    roles,
    stacks,
    verticals,
    slider_values,
    st.sampled_from(AGENTS),
    st.sampled_from(SLIDERS),
    st.sampled_from(sorted(BANDS)),
)
def test_crossing_a_band_boundary_swaps_exactly_one_vibe_atom(
    role: str,
    stack: list[str],
    vertical: str,
    sliders: dict[str, int],
    agent: str,
    slider: str,
    below: int,
) -> None:
    profile = build_profile(role, stack, vertical)
    lower = assemble_prompt(profile, VibeIn(**{**sliders, slider: below}), LIB, agent=agent)
    upper = assemble_prompt(profile, VibeIn(**{**sliders, slider: below + 1}), LIB, agent=agent)
    stem = "vibe-" + slider.replace("_", "-")
    old, new = BANDS[below]
    assert set(lower.atoms) - set(upper.atoms) == {(f"{stem}-{old}", 1)}
    assert set(upper.atoms) - set(lower.atoms) == {(f"{stem}-{new}", 1)}
    # the swapped atom takes the same place in the sequence
    assert [a for a, _ in lower.atoms].index(f"{stem}-{old}") == [a for a, _ in upper.atoms].index(
        f"{stem}-{new}"
    )


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(SLIDERS), st.integers(0, 10), st.integers(0, 10))
def test_moving_within_a_band_keeps_the_atoms(slider: str, a: int, b: int) -> None:
    def band(v: int) -> int:
        return 0 if v <= 3 else 1 if v <= 6 else 2

    profile = ProfileIn(role="CTO", stack=["Go"], vertical="SaaS")
    pa = assemble_prompt(profile, VibeIn(**{slider: a}), LIB)  # type: ignore[arg-type]
    pb = assemble_prompt(profile, VibeIn(**{slider: b}), LIB)  # type: ignore[arg-type]
    assert (pa.atoms == pb.atoms) == (band(a) == band(b))
    assert (pa.text == pb.text) == (a == b)


def cli_hash(seed: str, *args: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    result = subprocess.run(
        [sys.executable, "-m", "core.assembler", *args, "--hash"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout.strip()


def test_hash_is_identical_across_hash_seeds() -> None:
    args = (
        "--role", "Head of Platform",
        "--stack", "Terraform,react,Kafka,Zig,Swift,Node.js,Snowflake",
        "--vertical", "Fintech",
        "--vibe", "playfulness=7", "--vibe", "revenue_focus=3", "--vibe", "formality=9",
        "--agent", "incident-postmortem",
    )  # fmt: skip
    hashes = {cli_hash(seed, *args) for seed in ("0", "1", "987654321")}
    assert len(hashes) == 1
    expected = assemble_prompt(
        ProfileIn(
            role="Head of Platform",
            stack=["Terraform", "react", "Kafka", "Zig", "Swift", "Node.js", "Snowflake"],
            vertical="Fintech",
        ),
        VibeIn(playfulness=7, revenue_focus=3, formality=9),
        LIB,
        agent="incident-postmortem",
    )
    assert hashes == {expected.sha256}
