"""SECURITY.md names, for each promise (``CLAIM_IDS``), the tests that prove it; this checks the map is true.

The format of SECURITY.md's map (keep both sides in step):

* The map is the Markdown table between the lines ``<!-- claims:start -->`` and
  ``<!-- claims:end -->``. Its header row is ``| id | promise | status | proven by |``.
* One row per promise: ``| C<n> | <promise in plain words> | <status> | <proven by> |``.
  Every promise of ``CLAIM_IDS`` appears exactly once. A promise contains no ``|``.
* ``status`` is exactly ``enforced`` or ``not yet proven``.
* ``proven by`` lists tests in backticks: ``tests/<path>.py::<test_name>`` or
  ``tests/<path>.py::<TestClass>::<test_name>`` (no parametrize ids), separated by ``<br>``; free
  text is allowed around them (a "not yet proven" row says what is missing).
* An ``enforced`` row names at least one test. Every named test must exist: the file exists and
  defines it — a module-level ``def test_*`` (or ``async def``), or a ``test_*`` method of a
  module-level ``class Test*`` — found by parsing the file (``ast``), without importing it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECURITY_MD = ROOT / "SECURITY.md"
CLAIM_IDS = [f"C{n}" for n in range(1, 26)]
STATUSES = ("enforced", "not yet proven")
START, END = "<!-- claims:start -->", "<!-- claims:end -->"
ROW = re.compile(r"^\|\s*(C\d+)\s*\|(.*)\|\s*$")
TEST_REF = re.compile(r"`(tests/[\w./-]+\.py)::([\w:]+)`")


def defined_tests(path: Path) -> set[str]:
    """``test_x`` and ``TestClass::test_y`` names defined in a test file (by AST, not imported)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                    names.add(f"{node.name}::{item.name}")
    return names


def parse_claims(text: str) -> tuple[dict[str, tuple[str, str, list[str]]], list[str]]:
    """``{id: (promise, status, ["tests/x.py::test_y", ...])}`` and the format problems found."""
    problems: list[str] = []
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        return {}, [f"SECURITY.md needs exactly one {START} … {END} block"]
    block = text[text.index(START) + len(START) : text.index(END)]
    claims: dict[str, tuple[str, str, list[str]]] = {}
    for line in block.splitlines():
        line = line.strip()
        if not line or line.startswith("| id ") or set(line) <= set("|-: "):
            continue
        match = ROW.match(line)
        cells = match.group(2).split("|") if match else []
        if match is None or len(cells) != 3:
            problems.append(f"not a claim row (id | promise | status | proven by): {line[:80]}")
            continue
        claim_id = match.group(1)
        promise, status, proven_by = (c.strip() for c in cells)
        if claim_id in claims:
            problems.append(f"{claim_id} is listed twice")
        if claim_id not in CLAIM_IDS:
            problems.append(f"{claim_id} is not a known promise ({', '.join(CLAIM_IDS)})")
        if status not in STATUSES:
            problems.append(f"{claim_id}: status {status!r} is not one of {STATUSES}")
        if not promise:
            problems.append(f"{claim_id}: the promise is empty")
        refs = [f"{m.group(1)}::{m.group(2)}" for m in TEST_REF.finditer(proven_by)]
        claims[claim_id] = (promise, status, refs)
    for claim_id in CLAIM_IDS:
        if claim_id not in claims:
            problems.append(f"{claim_id} is missing from SECURITY.md")
    return claims, problems


def check_claims(text: str, root: Path = ROOT) -> list[str]:
    """Every problem with the claims map in ``text`` (an empty list when it is true)."""
    claims, problems = parse_claims(text)
    cache: dict[Path, set[str]] = {}
    for claim_id, (_, status, refs) in claims.items():
        if status == "enforced" and not refs:
            problems.append(f"{claim_id} is marked enforced but names no test")
        for ref in refs:
            file_part, name = ref.split("::", 1)
            path = root / file_part
            if not path.is_file():
                problems.append(f"{claim_id}: {ref}: no such file {file_part}")
                continue
            if path not in cache:
                cache[path] = defined_tests(path)
            if name not in cache[path]:
                problems.append(f"{claim_id}: {ref}: no such test in {file_part}")
    return problems


# ------------------------------------------------------------------------------------------------
def test_security_md_names_only_existing_tests_for_every_promise() -> None:
    problems = check_claims(SECURITY_MD.read_text(encoding="utf-8"))
    assert problems == [], "\n".join(problems)


def test_every_promise_is_listed_once_with_a_status() -> None:
    claims, problems = parse_claims(SECURITY_MD.read_text(encoding="utf-8"))
    assert problems == []
    assert sorted(claims, key=lambda c: int(c[1:])) == CLAIM_IDS
    assert all(status in STATUSES for _, status, _ in claims.values())


def test_a_renamed_test_breaks_the_map() -> None:
    text = SECURITY_MD.read_text(encoding="utf-8")
    claims, _ = parse_claims(text)
    ref = next(refs[0] for _, status, refs in claims.values() if status == "enforced")
    renamed = ref + "_renamed"
    problems = check_claims(text.replace(f"`{ref}`", f"`{renamed}`", 1))
    assert any(renamed in p and "no such test" in p for p in problems), problems


def test_a_missing_file_an_untested_promise_and_a_bad_status_break_the_map() -> None:
    text = SECURITY_MD.read_text(encoding="utf-8")
    lines = text.splitlines()
    c10 = next(i for i, line in enumerate(lines) if line.startswith("| C10 |"))
    c20 = next(i for i, line in enumerate(lines) if line.startswith("| C20 |"))
    lines[c10] = "| C10 | Speed and usage are recorded. | enforced | none yet |"
    lines[c20] = lines[c20].replace("tests/db/test_rate_limits.py", "tests/db/test_gone.py")
    problems = check_claims("\n".join(lines))
    assert "C10 is marked enforced but names no test" in problems
    assert any(p.startswith("C20:") and "no such file tests/db/test_gone.py" in p for p in problems)

    problems = check_claims(text.replace("| enforced |", "| probably |", 1))
    assert any("status 'probably'" in p for p in problems), problems
    problems = check_claims("\n".join(line for line in text.splitlines() if not line.startswith("| C5 |")))
    assert "C5 is missing from SECURITY.md" in problems


def test_test_names_are_found_by_parsing(tmp_path: Path) -> None:
    source = (
        "import pytest\n"
        "def test_plain(): pass\n"
        "async def test_async(): pass\n"
        "def helper_test(): pass\n"
        "class TestThing:\n"
        "    def test_method(self): pass\n"
        "    def helper(self): pass\n"
        "class Helper:\n"
        "    def test_not_collected(self): pass\n"
        "def outer():\n"
        "    def test_nested(): pass\n"
    )
    path = tmp_path / "test_sample.py"
    path.write_text(source)
    assert defined_tests(path) == {"test_plain", "test_async", "TestThing::test_method"}
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_sample.py").write_text(source)
    rows = "\n".join(
        f"| {c} | p | enforced | `tests/test_sample.py::TestThing::test_method` |" for c in CLAIM_IDS
    )
    assert check_claims(f"{START}\n{rows}\n{END}\n", root=tmp_path) == []
    bad = rows.replace("TestThing::test_method", "Helper::test_not_collected", 1)
    assert len(check_claims(f"{START}\n{bad}\n{END}\n", root=tmp_path)) == 1
