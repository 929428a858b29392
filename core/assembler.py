"""Deterministic system-prompt assembly from prompt atoms.

``assemble_prompt(profile, vibe, atoms, agent=...)`` picks the atoms whose ``when`` holds, sorts
them by (order, id), renders their precompiled bodies and returns an ``AssembledPrompt`` with the
text, its sha256 and the (id, version) of every atom used. It is a pure function of its inputs: no
clock, randomness, environment, locale or hash-seed dependence. The stack is normalised (deduped
case-insensitively, sorted by casefolded name), so list order and dict order never matter.

How user text is kept inert
---------------------------
Profile fields (role, vertical, stack) are typed by users, so they could carry text such as
"ignore previous instructions" or a forged fence. Two rules keep them data:

1. **Free text never reaches the instruction part.** Placeholders ``{role}``, ``{vertical}`` and
   ``{stack}`` in atom bodies render only *allow-listed canonical names* (``ROLES``, ``VERTICALS``,
   known technologies from ``core.stack_categories.KNOWN_STACK``). Anything else renders as a
   pointer such as ``as described in the profile data``.
2. **The exact values live in one fenced data block** (``{profile_data}``), between the lines
   ``<<<BEGIN PROFILE DATA>>>`` and ``<<<END PROFILE DATA>>>``, one ``key: <JSON string/list>`` per
   line. Values are JSON-encoded, and additionally every ``<`` and ``>`` is written as ``\\u003c`` /
   ``\\u003e`` and every control, format (e.g. U+202E RTL override), separator, surrogate,
   private-use or unassigned character as a ``\\uXXXX`` escape. So a value is always one printable
   line that cannot contain ``<<<`` or ``>>>``: the fence cannot be closed or re-opened from
   inside, and ``json.loads`` of each line's value gives back exactly what the user typed. Atom
   bodies are forbidden (by the loader) from containing the fence characters, so the prompt has
   exactly one opening and one closing fence.

If no atom uses ``{profile_data}``, the block is appended at the end so it is always present once.

CLI (``python -m core.assembler --help``) prints a prompt, its hash (``--hash``), or a unified
diff against a second configuration given after ``--`` (``--diff``).
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Final, NamedTuple

from pydantic import ValidationError

from core.atom_parsing import (
    OTHER,
    SLIDER_TOKENS,
    AtomError,
    agent_token,
    category_token,
    role_token,
    stack_token,
    vertical_token,
)
from core.atoms import AtomLibrary, load_atoms
from core.stack_categories import KNOWN_STACK
from models.schemas import ROLES, VERTICALS, ProfileIn, VibeIn, error_lines
from models.vibe import SLIDERS

FENCE_OPEN: Final = "<<<BEGIN PROFILE DATA>>>"
FENCE_CLOSE: Final = "<<<END PROFILE DATA>>>"
DEFAULT_AGENT: Final = "general"

_ROLE_BY_KEY: Final = {r.casefold(): r for r in ROLES}
_VERTICAL_BY_KEY: Final = {v.casefold(): v for v in VERTICALS}
_UNSAFE_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_SLIDER_TOKENS: Final = SLIDER_TOKENS
_NUMBERS: Final = tuple(str(v) for v in range(11))
# casefolded known technology → (canonical name, its feature tokens: stack + categories)
_STACK_INFO: Final = {
    key: (name, (stack_token(key), *map(category_token, cats))) for key, (name, cats) in KNOWN_STACK.items()
}


class UnknownAgentError(ValueError):
    """``agent`` is not an agent of the atom library."""


class Section(NamedTuple):
    """One atom as it appears in a prompt: which atom, why it applied, and its rendered text.

    (A NamedTuple rather than a dataclass: it is built ~15 times per assembly and is 6x cheaper.)
    """

    atom_id: str
    version: int
    why: str
    text: str


@dataclass(frozen=True, slots=True)
class AssembledPrompt:
    text: str
    sha256: str
    atoms: tuple[tuple[str, int], ...]
    sections: tuple[Section, ...]
    agent: str = DEFAULT_AGENT


# --------------------------------------------------------------------------------------------------
# escaping


def _u_escape(ch: str) -> str:
    cp = ord(ch)
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    cp -= 0x10000
    return f"\\u{0xD800 + (cp >> 10):04x}\\u{0xDC00 + (cp & 0x3FF):04x}"


def _neutralise(encoded: str) -> str:
    """Escape ``<``, ``>``, DEL and every unsafe non-ASCII character of already-JSON-encoded text.

    Char-level, so it may run on several encoded values joined by ASCII separators at once.
    """
    out = encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("\x7f", "\\u007f")
    if not out.isascii():
        out = "".join(
            _u_escape(ch) if not ch.isascii() and unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch
            for ch in out
        )
    return out


def json_inert(value: str) -> str:
    """``value`` as a JSON string literal that is one printable line free of ``<`` and ``>``.

    ``json.loads(json_inert(v)) == v`` for every ``str`` ``v``.
    """
    # encode_basestring is what json.dumps(value, ensure_ascii=False) returns, minus its overhead;
    # it escapes quotes, backslashes and U+0000–U+001F.
    return _neutralise(encode_basestring(value))


def profile_data_block(role: str, vertical: str, stack: Sequence[str]) -> str:
    """The fenced block holding the user's exact profile values (see the module docstring)."""
    lines = _neutralise(
        f"role: {encode_basestring(role)}\nvertical: {encode_basestring(vertical)}\n"
        f"stack: [{', '.join(map(encode_basestring, stack))}]"
    )
    return f"{FENCE_OPEN}\n{lines}\n{FENCE_CLOSE}"


# --------------------------------------------------------------------------------------------------
# assembly


def normalise_stack(stack: Sequence[str]) -> tuple[str, ...]:
    """Dedupe case-insensitively (first spelling wins) and sort by casefolded name."""
    seen: dict[str, str] = {}
    for item in stack:
        seen.setdefault(item.casefold(), item)
    return tuple(seen[k] for k in sorted(seen))


def _features_and_values(
    profile: ProfileIn, stack: tuple[str, ...], vibe: VibeIn, agent: str
) -> tuple[set[str], dict[str, str]]:
    """The request as feature tokens (for ``when``) and the placeholder values (for bodies).

    Placeholder values for role/vertical/stack are canonical names or pointers to the data
    block, never the user's free text (see the module docstring).
    """
    role = profile.role
    vertical = profile.vertical
    canonical_role = _ROLE_BY_KEY.get(role.casefold())
    canonical_vertical = _VERTICAL_BY_KEY.get(vertical.casefold()) if vertical else None
    features = {role_token(canonical_role or OTHER), agent_token(agent)}
    if vertical:
        features.add(vertical_token(canonical_vertical or OTHER))
    known: list[str] = []
    unknown = 0
    for item in stack:
        key = item.casefold()
        entry = _STACK_INFO.get(key)
        if entry is None:
            features.add(stack_token(key))
            unknown += 1
            continue
        known.append(entry[0])
        features.update(entry[1])
    playfulness, revenue_focus, technical_depth, brevity, formality = (
        vibe.playfulness,
        vibe.revenue_focus,
        vibe.technical_depth,
        vibe.brevity,
        vibe.formality,
    )
    features.update(
        (
            _SLIDER_TOKENS["playfulness"][playfulness],
            _SLIDER_TOKENS["revenue_focus"][revenue_focus],
            _SLIDER_TOKENS["technical_depth"][technical_depth],
            _SLIDER_TOKENS["brevity"][brevity],
            _SLIDER_TOKENS["formality"][formality],
        )
    )
    if known:
        stack_text = ", ".join(known)
        if unknown:
            stack_text += f" and {unknown} more listed in the profile data"
    elif unknown:
        stack_text = "as listed in the profile data"
    else:
        stack_text = "not specified"
    if canonical_vertical is not None and canonical_vertical != OTHER:
        vertical_text = canonical_vertical
    else:
        vertical_text = "as described in the profile data" if vertical else "not specified"
    values = {
        "role": canonical_role or "as described in the profile data",
        "vertical": vertical_text,
        "stack": stack_text,
        "playfulness": _NUMBERS[playfulness],
        "revenue_focus": _NUMBERS[revenue_focus],
        "technical_depth": _NUMBERS[technical_depth],
        "brevity": _NUMBERS[brevity],
        "formality": _NUMBERS[formality],
    }
    return features, values


def assemble_prompt(
    profile: ProfileIn, vibe: VibeIn, atoms: AtomLibrary, *, agent: str = DEFAULT_AGENT
) -> AssembledPrompt:
    """Assemble the system prompt for ``profile`` + ``vibe`` in advisor mode ``agent``.

    Raises ``UnknownAgentError`` when ``agent`` is not an agent atom of ``atoms``.
    """
    if agent not in atoms.agent_ids():
        known = ", ".join(a[0] for a in atoms.agents()) or "none"
        raise UnknownAgentError(f"unknown agent {agent!r}; known: {known}")
    stack = normalise_stack(profile.stack)
    features, values = _features_and_values(profile, stack, vibe, agent)
    block = profile_data_block(profile.role, profile.vertical, stack)
    values["profile_data"] = block
    sections: list[Section] = []
    used_block = False
    for groups, agent_id, atom_id, version, why, static, pieces, uses_block in atoms.plan():
        if agent_id:
            if agent_id != agent:
                continue
            why = f"agent {agent} chosen"
        else:
            applies = True
            for group in groups:
                if group.isdisjoint(features):
                    applies = False
                    break
            if not applies:
                continue
            if uses_block:
                used_block = True
        if static is None:
            static = "".join([literal + values[name] if name else literal for literal, name in pieces])
        sections.append(Section(atom_id, version, why, static))
    parts = [s.text for s in sections]
    if not used_block:
        parts.append(block)
    text = "\n\n".join(parts) + "\n"
    return AssembledPrompt(
        text=text,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        atoms=tuple((s.atom_id, s.version) for s in sections),
        sections=tuple(sections),
        agent=agent,
    )


def vibe_section(vibe: VibeIn, atoms: AtomLibrary) -> str:
    """Only the vibe atoms (those conditioned on sliders alone), rendered as in the full prompt."""
    values = {name: str(getattr(vibe, name)) for name in SLIDERS}
    parts = [atom.render(values) for atom in atoms.vibe_atoms() if _ranges_hold(atom.when.ranges, values)]
    return "\n\n".join(parts)


def _ranges_hold(ranges: tuple[tuple[str, int, int], ...], values: Mapping[str, str]) -> bool:
    return all(low <= int(values[name]) <= high for name, low, high in ranges)


def diff_prompts(a: AssembledPrompt, b: AssembledPrompt, *, context: int = 3) -> str:
    """Unified diff (difflib) from prompt ``a`` to prompt ``b``; empty when they are identical."""
    return "".join(
        difflib.unified_diff(
            a.text.splitlines(keepends=True),
            b.text.splitlines(keepends=True),
            fromfile=f"a ({a.sha256[:12]})",
            tofile=f"b ({b.sha256[:12]})",
            n=context,
        )
    )


def run_record(prompt: AssembledPrompt) -> tuple[str, list[list[str | int]]]:
    """What an ``agent_runs`` row stores: ``(prompt_sha256, atom_versions)``; the list is JSON-able."""
    return prompt.sha256, [[atom_id, version] for atom_id, version in prompt.atoms]


# --------------------------------------------------------------------------------------------------
# CLI


class _CliError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m core.assembler",
        description="Print the system prompt assembled for a profile and vibe.",
        epilog="--diff: give a second set of flags after `--`; they override the first set.",
    )
    p.add_argument("--role", default="CTO", help="role (one of the list, or free text)")
    p.add_argument("--stack", default="", help="comma-separated stack items")
    p.add_argument("--vertical", default="", help="vertical")
    p.add_argument(
        "--vibe", action="append", default=[], metavar="SLIDER=N", help=f"slider: {', '.join(SLIDERS)}"
    )
    p.add_argument("--agent", default=DEFAULT_AGENT, help="advisor mode id")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--hash", action="store_true", help="print only the sha256 of the prompt")
    out.add_argument("--diff", action="store_true", help="unified diff against the flags after --")
    return p


def _one_line(exc: ValidationError) -> str:
    return " ".join(error_lines(exc))


def _build_inputs(ns: argparse.Namespace) -> tuple[ProfileIn, VibeIn]:
    sliders: dict[str, int] = {}
    for pair in ns.vibe:
        name, sep, raw = pair.partition("=")
        name = name.strip()
        if not sep or name not in SLIDERS:
            raise _CliError(f"--vibe {pair!r}: expected SLIDER=N with SLIDER one of {', '.join(SLIDERS)}")
        try:
            sliders[name] = int(raw)
        except ValueError:
            raise _CliError(f"--vibe {pair!r}: {raw!r} is not an integer") from None
    stack = [s.strip() for s in ns.stack.split(",") if s.strip()]
    try:
        profile = ProfileIn(role=ns.role, stack=stack, vertical=ns.vertical)
        vibe = VibeIn(**sliders)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise _CliError(_one_line(exc)) from None
    return profile, vibe


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    first, second = (args[: args.index("--")], args[args.index("--") + 1 :]) if "--" in args else (args, None)
    parser = _parser()
    ns = parser.parse_args(first)
    try:
        if second is not None and not ns.diff:
            raise _CliError("flags after `--` are only used with --diff")
        if ns.diff and second is None:
            raise _CliError("--diff needs a second set of flags after `--`")
        library = load_atoms()
        profile, vibe = _build_inputs(ns)
        prompt = assemble_prompt(profile, vibe, library, agent=ns.agent)
        if ns.hash:
            print(prompt.sha256)
        elif ns.diff and second is not None:
            ns2 = argparse.Namespace(**{**vars(ns), "vibe": list(ns.vibe)})
            ns2 = parser.parse_args(second, namespace=ns2)
            profile2, vibe2 = _build_inputs(ns2)
            other = assemble_prompt(profile2, vibe2, library, agent=ns2.agent)
            sys.stdout.write(diff_prompts(prompt, other))
        else:
            sys.stdout.write(prompt.text)
    except (_CliError, UnknownAgentError, AtomError) as exc:
        print(f"{parser.prog}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
