"""core.atom_parsing: a malformed atom file fails with a message naming the file and the problem;
a valid ``when`` reads as a sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.atom_parsing import AtomError
from core.atoms import load_atoms
from tests.factories import write_atom

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
