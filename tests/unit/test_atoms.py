"""core.atoms: the shipped library is valid and complete; libraries are cached; checks across files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.atom_parsing import ALLOWED_PLACEHOLDERS, AtomError
from core.atoms import DEFAULT_ATOMS_DIR, clear_atom_cache, load_atoms
from core.stack_categories import STACK_CATEGORY_NAMES
from models.schemas import ROLES, VERTICALS
from models.vibe import SLIDERS
from tests.factories import write_atom

# -- the shipped library -----------------------------------------------------------------------------


def test_shipped_library_loads_and_is_rich_enough() -> None:
    lib = load_atoms()
    assert len(lib) >= 30
    agent_ids = [a[0] for a in lib.agents()]
    assert len(agent_ids) >= 5
    assert agent_ids[0] == "general"
    assert {
        "architecture-review",
        "hiring-plan",
        "incident-postmortem",
        "board-update",
        "pricing-strategy",
    } <= set(agent_ids)
    for atom_id, title, description in lib.agents():
        assert title and description, atom_id


def test_shipped_atoms_are_named_after_their_id_and_sorted() -> None:
    lib = load_atoms()
    for atom in lib.atoms:
        assert Path(atom.filename).name == f"{atom.id}.md"
    keys = [(a.order, a.id) for a in lib.atoms]
    assert keys == sorted(keys)


def test_every_role_and_vertical_has_an_atom() -> None:
    lib = load_atoms()
    covered_roles = set().union(*(a.when.roles for a in lib.atoms if not a.when.agents))
    assert set(ROLES) | {"Other"} <= covered_roles
    covered_verticals = set().union(*(a.when.verticals for a in lib.atoms if not a.when.agents))
    assert set(VERTICALS) <= covered_verticals
    covered_categories = set().union(*(a.when.stack_categories for a in lib.atoms if not a.when.agents))
    assert set(STACK_CATEGORY_NAMES) <= covered_categories


def test_vibe_atoms_cover_every_slider_value_exactly_once_in_three_bands() -> None:
    lib = load_atoms()
    for slider in SLIDERS:
        atoms = [a for a in lib.vibe_atoms() if a.when.ranges[0][0] == slider]
        assert sorted((lo, hi) for a in atoms for _, lo, hi in a.when.ranges) == [(0, 3), (4, 6), (7, 10)]
        for value in range(11):
            assert sum(lo <= value <= hi for a in atoms for _, lo, hi in a.when.ranges) == 1
        assert {a.id for a in atoms} == {
            f"vibe-{slider.replace('_', '-')}-{b}" for b in ("low", "medium", "high")
        }


def test_placeholders_in_shipped_bodies_are_allowed_and_braces_balanced() -> None:
    lib = load_atoms()
    for atom in lib.atoms:
        assert atom.placeholders <= ALLOWED_PLACEHOLDERS
        assert set(re.findall(r"\{(\w+)\}", atom.body)) == set(atom.placeholders), atom.id


def test_profile_data_is_used_exactly_once() -> None:
    lib = load_atoms()
    assert [a.id for a in lib.atoms if a.has_profile_data] == ["profile-data"]


# -- caching -------------------------------------------------------------------------------------------


def test_cache_returns_same_library_until_a_file_changes(tmp_path: Path) -> None:
    clear_atom_cache()
    path = write_atom(tmp_path, "alpha")
    write_atom(
        tmp_path, "general", front="id: general\nversion: 1\norder: 0\nkind: agent\ntitle: G\ndescription: d"
    )
    first = load_atoms(tmp_path)
    assert load_atoms(tmp_path) is first
    path.write_text(path.read_text().replace("version: 1", "version: 2"), encoding="utf-8")
    second = load_atoms(tmp_path)
    assert second is not first
    assert second.get("alpha").version == 2
    assert second.content_hash != first.content_hash
    write_atom(tmp_path, "beta")
    assert "beta" in load_atoms(tmp_path)


def test_default_directory_is_prompts_atoms() -> None:
    assert load_atoms().directory == DEFAULT_ATOMS_DIR.resolve()


# -- malformed libraries --------------------------------------------------------------------------------


def test_duplicate_id_names_both_files(tmp_path: Path) -> None:
    write_atom(tmp_path, "a-first", atom_id="same")
    write_atom(tmp_path, "b-second", atom_id="same")
    with pytest.raises(AtomError) as info:
        load_atoms(tmp_path)
    message = str(info.value)
    assert "b-second.md: duplicate id 'same'" in message
    assert "a-first.md" in message


def test_two_profile_data_atoms(tmp_path: Path) -> None:
    write_atom(tmp_path, "one", body="{profile_data}")
    write_atom(tmp_path, "two", body="{profile_data}")
    with pytest.raises(AtomError, match=r"two\.md: \{profile_data\} is already used by .*one\.md"):
        load_atoms(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(AtomError, match="does not exist"):
        load_atoms(tmp_path / "nope")
