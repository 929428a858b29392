"""core.atoms: the shipped library is valid and complete; malformed atoms fail with clear messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.atoms import (
    ALLOWED_PLACEHOLDERS,
    DEFAULT_ATOMS_DIR,
    KNOWN_STACK,
    STACK_CATEGORIES,
    STACK_CATEGORY_NAMES,
    AtomError,
    clear_atom_cache,
    load_atoms,
)
from models.schemas import ROLES, STACK_SUGGESTIONS, VERTICALS
from models.vibe import SLIDERS


def write_atom(
    directory: Path,
    name: str,
    *,
    atom_id: str | None = None,
    front: str | None = None,
    body: str = "Body text.",
) -> Path:
    """Write ``<name>.md`` with default front matter unless ``front`` (raw YAML lines) is given."""
    if front is None:
        front = f"id: {atom_id or name}\nversion: 1\norder: 1\ndescription: test atom"
    path = directory / f"{name}.md"
    path.write_text(f"---\n{front}\n---\n{body}\n", encoding="utf-8")
    return path


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


def test_every_stack_suggestion_maps_to_a_category() -> None:
    for item in STACK_SUGGESTIONS:
        assert item in STACK_CATEGORIES, item
        assert set(STACK_CATEGORIES[item]) <= set(STACK_CATEGORY_NAMES)
        assert KNOWN_STACK[item.casefold()][0] == item


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


# -- malformed atoms -----------------------------------------------------------------------------------

BASE = "id: bad\nversion: 1\norder: 1\ndescription: test"


@pytest.mark.parametrize(
    ("front", "body", "problem"),
    [
        ("id: [unclosed\nversion: 1", "x", "not valid YAML"),
        ("id: bad\norder: 1\ndescription: d", "x", "missing required field(s) version"),
        ("id: bad\nversion: 1\norder: 1", "x", "missing required field(s) description"),
        ("- just\n- a list", "x", "must be a YAML mapping"),
        (BASE + "\ncolour: red", "x", "unknown front matter key(s) colour"),
        ("id: Bad Id\nversion: 1\norder: 1\ndescription: d", "x", "id must be lower-case"),
        ("id: bad\nversion: 0\norder: 1\ndescription: d", "x", "version must be an integer >= 1"),
        ("id: bad\nversion: true\norder: 1\ndescription: d", "x", "version must be an integer >= 1"),
        ("id: bad\nversion: 1\norder: first\ndescription: d", "x", "order must be an integer"),
        (BASE, "Hello {secret}", "unknown placeholder {secret}"),
        (BASE, "Hello {role!r}", "may not have a format spec or conversion"),
        (BASE, "Hello {role", "bad placeholder syntax"),
        (BASE, "Escape <<<END PROFILE DATA>>>", "reserved for the profile data fence"),
        (BASE, "", "body is empty"),
        (BASE + "\nwhen:\n  colour: [red]", "x", "unknown `when` key(s) colour"),
        (BASE + "\nwhen: always", "x", "`when` must be a mapping"),
        (BASE + "\nwhen: {}", "x", "`when` is empty"),
        (BASE + "\nwhen:\n  role: [Janitor]", "x", "when.role has unknown role(s) ['Janitor']"),
        (BASE + "\nwhen:\n  vertical: [Crypto]", "x", "when.vertical has unknown vertical(s) ['Crypto']"),
        (BASE + "\nwhen:\n  stack_category: [quantum]", "x", "when.stack_category has unknown value(s)"),
        (BASE + "\nwhen:\n  stack_any: []", "x", "when.stack_any must be a non-empty list"),
        (BASE + "\nwhen:\n  playfulness: [8, 3]", "x", "when.playfulness must be an inclusive range"),
        (BASE + "\nwhen:\n  brevity: [0, 11]", "x", "when.brevity must be an inclusive range"),
        (BASE + "\nwhen:\n  brevity: 5", "x", "when.brevity must be an inclusive range"),
        (BASE + "\nwhen:\n  agent: [ghost]", "x", "when.agent names unknown agent(s) ['ghost']"),
        (
            BASE + "\nwhen:\n  playfulness: [0, 3]",
            "{role}",
            "vibe atom (only slider conditions) may use only",
        ),
        (BASE + "\nkind: agent", "x", "an agent needs a non-empty `title`"),
        (BASE + "\nkind: persona", "x", "kind must be 'atom' or 'agent'"),
        (BASE + "\ntitle: T", "x", "`title` is only for atoms of `kind: agent`"),
        (BASE + "\nkind: agent\ntitle: T\nwhen:\n  role: [CTO]", "x", "an agent applies when it is chosen"),
        (BASE + "\nwhen:\n  role: [CTO]", "{profile_data}", "{profile_data} must appear once"),
    ],
)
def test_malformed_atom_names_file_and_problem(tmp_path: Path, front: str, body: str, problem: str) -> None:
    write_atom(tmp_path, "fine")
    bad = write_atom(tmp_path, "broken", front=front, body=body)
    with pytest.raises(AtomError) as info:
        load_atoms(tmp_path)
    message = str(info.value)
    assert message.startswith(str(bad.resolve())), message
    assert problem in message, message


def test_missing_front_matter(tmp_path: Path) -> None:
    path = tmp_path / "plain.md"
    path.write_text("Just a body, no front matter.\n", encoding="utf-8")
    with pytest.raises(AtomError, match=r"plain\.md: must start with a '---' line"):
        load_atoms(tmp_path)


def test_unclosed_front_matter(tmp_path: Path) -> None:
    (tmp_path / "open.md").write_text("---\nid: open\nversion: 1\n", encoding="utf-8")
    with pytest.raises(AtomError, match=r"open\.md: front matter is not closed"):
        load_atoms(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "latin.md").write_bytes(b"---\nid: latin\n---\ncaf\xe9\n")
    with pytest.raises(AtomError, match=r"latin\.md: is not UTF-8"):
        load_atoms(tmp_path)


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


def test_valid_when_renders_a_readable_reason(tmp_path: Path) -> None:
    write_atom(
        tmp_path, "general", front="id: general\nversion: 1\norder: 0\nkind: agent\ntitle: G\ndescription: d"
    )
    write_atom(
        tmp_path,
        "cond",
        front=BASE.replace("bad", "cond")
        + "\nwhen:\n  agent: [general]\n  playfulness: [7, 10]"
        + "\n  role: [CTO, Founder]\n  stack_category: [data]",
    )
    atom = load_atoms(tmp_path).get("cond")
    assert (
        atom.when.why
        == "role is CTO or Founder and stack has data technology and playfulness is 7–10 and agent is general"
    )
