"""``python -m core.assembler``: prompt, --hash, --diff, and one-line errors with exit status 2."""

from __future__ import annotations

import pytest

from core.assembler import assemble_prompt, main
from core.atoms import load_atoms
from models.schemas import ProfileIn, VibeIn


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_the_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "--role", "CTO", "--stack", "React,Node.js", "--vertical", "SaaS",
        "--vibe", "playfulness=7", "--vibe", "revenue_focus=3", "--agent", "board-update",
    )  # fmt: skip
    expected = assemble_prompt(
        ProfileIn(role="CTO", stack=["React", "Node.js"], vertical="SaaS"),
        VibeIn(playfulness=7, revenue_focus=3),
        load_atoms(),
        agent="board-update",
    )
    assert (code, err) == (0, "")
    assert out == expected.text


def test_hash_prints_only_the_sha(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--role", "Founder", "--hash")
    expected = assemble_prompt(ProfileIn(role="Founder"), VibeIn(), load_atoms())
    assert code == 0
    assert out == expected.sha256 + "\n"


def test_diff_against_second_flag_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--role", "CTO", "--vibe", "brevity=2", "--diff", "--", "--vibe", "brevity=9")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("--- a (") and lines[1].startswith("+++ b (")
    assert any(line.startswith("-Length (brevity 2/10)") for line in lines)
    assert any(line.startswith("+Length (brevity 9/10)") for line in lines)
    # the second set inherits everything else from the first: role stays CTO
    assert not any(line.startswith(("-# Your user", "+# Your user")) for line in lines)


def test_diff_of_identical_configs_is_empty(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--role", "CTO", "--diff", "--") == (0, "", "")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--vibe", "sparkle=3"], "expected SLIDER=N"),
        (["--vibe", "playfulness"], "expected SLIDER=N"),
        (["--vibe", "playfulness=high"], "is not an integer"),
        (["--vibe", "playfulness=11"], "Playfulness: Enter a whole number from 0 to 10."),
        (["--vibe", "brevity=-1"], "Brevity: Enter a whole number from 0 to 10."),
        (["--agent", "nope"], "unknown agent 'nope'"),
        (["--role", ""], "Role: Choose a role"),
        (["--role", "x" * 61], "at most 60"),
        (["--stack", "a\u202eb"], "Stack: Each entry: remove the control or invisible character U+202E."),
        (["--diff"], "--diff needs a second set of flags"),
        (["--", "--role", "CTO"], "only used with --diff"),
        (["--diff", "--", "--vibe", "formality=99"], "Formality: Enter a whole number from 0 to 10."),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--hash", "--diff", "--"], "not allowed with argument"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("python -m core.assembler: error: ")
    assert needle in last
    if "unrecognized" not in needle and "not allowed" not in needle:
        assert err.count("\n") == 1  # our validation errors are exactly one line
