"""One prompt atom: its file format, and parsing + validating one file into an ``Atom``.

An atom is one Markdown file with YAML front matter::

    ---
    id: role-cto                # unique; by convention also the file name
    version: 1                  # int >= 1; bump it whenever the body changes meaning
    order: 20                   # position in the prompt; ties are broken by id
    description: What this atom is for (shown in the prompt preview).
    when:                       # all keys must hold; a list means "any of"; absent = always
      role: [CTO]               # canonical names from models.schemas.ROLES, or Other
      vertical: [SaaS]          # models.schemas.VERTICALS (Other = anything else typed)
      stack_any: [Go, Rust]     # any stack item equals one of these (case-insensitive)
      stack_category: [data]    # any stack item maps to one of STACK_CATEGORY_NAMES
      playfulness: [7, 10]      # inclusive slider range (any of models.vibe.SLIDERS)
      agent: [board-update]     # the advisor mode chosen for the conversation
    kind: agent                 # optional; agents also need `title` and have no `when`
    title: Board update         # human label of an agent
    ---
    Body text with {placeholders}.

Placeholders come from the profile and vibe only (``ALLOWED_PLACEHOLDERS``); ``{{``/``}}`` are
literal braces. ``parse_atom`` compiles a body into literal/field pieces, so assembling a prompt
never re-parses a template, and a ``when`` into groups of feature tokens (``Condition``).
Checks that span several files (unique ids, known agents, one ``{profile_data}``) are made when a
directory is loaded (``core.atoms``).

Every problem raises ``AtomError`` whose message starts with the offending file.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import yaml

from core.stack_categories import STACK_CATEGORY_NAMES
from models.schemas import ROLES, VERTICALS
from models.vibe import SLIDERS

PROFILE_PLACEHOLDERS: Final = ("role", "vertical", "stack", "profile_data")
ALLOWED_PLACEHOLDERS: Final = frozenset((*PROFILE_PLACEHOLDERS, *SLIDERS))
OTHER: Final = "Other"
ROLE_VALUES: Final = frozenset((*ROLES, OTHER))
VERTICAL_VALUES: Final = frozenset(VERTICALS)  # already contains "Other"

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_FRONT_KEYS: Final = frozenset({"id", "version", "order", "when", "description", "kind", "title"})
_REQUIRED: Final = ("id", "version", "order", "description")
_WHEN_KEYS: Final = ("role", "vertical", "stack_any", "stack_category", *SLIDERS, "agent")
# Fence markers of the profile data block (see core.assembler); atom text must never contain them.
FENCE_CHARS: Final = ("<<<", ">>>")


class AtomError(ValueError):
    """A prompt atom (or the atom directory) is malformed. The message names the file."""

    @classmethod
    def in_file(cls, filename: str, problem: str) -> AtomError:
        """The error ``<filename>: <problem>``."""
        return cls(f"{filename}: {problem}")


def role_token(role: str) -> str:
    return f"role:{role}"


def vertical_token(vertical: str) -> str:
    return f"vertical:{vertical}"


def stack_token(casefolded_item: str) -> str:
    return f"stack:{casefolded_item}"


def category_token(category: str) -> str:
    return f"category:{category}"


def agent_token(agent: str) -> str:
    return f"agent:{agent}"


# SLIDER_TOKENS[slider][value] — precomputed because every assembly needs five of them.
SLIDER_TOKENS: Final[Mapping[str, tuple[str, ...]]] = {
    name: tuple(f"{name}={v}" for v in range(11)) for name in SLIDERS
}


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed ``when``: every part must hold; within a part, any value matches.

    For speed each part is precompiled to a frozenset of feature tokens (``role:CTO``,
    ``category:data``, ``playfulness=7`` …). The assembler builds the set of tokens describing a
    request once; the condition holds when every group shares a token with it.
    """

    roles: frozenset[str] = frozenset()
    verticals: frozenset[str] = frozenset()
    stack_any: frozenset[str] = frozenset()  # casefolded
    stack_categories: frozenset[str] = frozenset()
    ranges: tuple[tuple[str, int, int], ...] = ()  # (slider, low, high), inclusive, in SLIDERS order
    agents: frozenset[str] = frozenset()
    why: str = "always"
    groups: tuple[frozenset[str], ...] = ()

    @property
    def is_vibe_only(self) -> bool:
        """True when only slider ranges are set (a vibe atom: needs nothing but the vibe)."""
        return bool(self.ranges) and not (
            self.roles or self.verticals or self.stack_any or self.stack_categories or self.agents
        )

    def matches(self, features: frozenset[str] | set[str]) -> bool:
        return all(not group.isdisjoint(features) for group in self.groups)


def _groups(
    roles: frozenset[str],
    verticals: frozenset[str],
    stack_any: frozenset[str],
    categories: frozenset[str],
    ranges: tuple[tuple[str, int, int], ...],
    agents: frozenset[str],
) -> tuple[frozenset[str], ...]:
    groups = [
        frozenset(map(role_token, roles)),
        frozenset(map(vertical_token, verticals)),
        frozenset(map(stack_token, stack_any)),
        frozenset(map(category_token, categories)),
        *(frozenset(SLIDER_TOKENS[name][low : high + 1]) for name, low, high in ranges),
        frozenset(map(agent_token, agents)),
    ]
    return tuple(g for g in groups if g)


@dataclass(frozen=True, slots=True)
class Atom:
    id: str
    version: int
    order: int
    description: str
    body: str
    # The body precompiled: literal text, then a placeholder name ("" after the last literal).
    pieces: tuple[tuple[str, str], ...]
    placeholders: frozenset[str]
    when: Condition
    kind: Literal["atom", "agent"] = "atom"
    title: str = ""
    filename: str = ""
    has_profile_data: bool = False

    def render(self, values: Mapping[str, str]) -> str:
        """Fill the placeholders from ``values`` (which must hold every name in ``placeholders``)."""
        if not self.placeholders:
            return self.body
        return "".join([literal + values[name] if name else literal for literal, name in self.pieces])


# --------------------------------------------------------------------------------------------------
# parsing


def _split_front_matter(filename: str, text: str) -> tuple[str, str]:
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    if not text.startswith("---\n"):
        raise AtomError.in_file(filename, "must start with a '---' line opening the YAML front matter")
    end = text.find("\n---\n", 3)
    if end == -1:
        if text.endswith("\n---"):
            end = len(text) - 4
        else:
            raise AtomError.in_file(filename, "front matter is not closed by a '---' line")
    return text[4 : end + 1], text[end + 5 :]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_list(filename: str, key: str, value: object) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise AtomError.in_file(filename, f"when.{key} must be a non-empty list of strings, got {value!r}")
    return list(value)


def _fmt_list(values: list[str] | tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def _parse_when(filename: str, raw: object) -> Condition:
    if raw is None:
        return Condition()
    if not isinstance(raw, dict):
        raise AtomError.in_file(filename, f"`when` must be a mapping of conditions, got {type(raw).__name__}")
    unknown = sorted(str(k) for k in raw if k not in _WHEN_KEYS)
    if unknown:
        when_keys = ", ".join(_WHEN_KEYS)
        raise AtomError.in_file(filename, f"unknown `when` key(s) {', '.join(unknown)}; allowed: {when_keys}")
    if not raw:
        raise AtomError.in_file(filename, "`when` is empty; remove it for an atom that always applies")
    parts: dict[str, Any] = {}
    why: list[str] = []
    if "role" in raw:
        roles = _str_list(filename, "role", raw["role"])
        bad = [r for r in roles if r not in ROLE_VALUES]
        if bad:
            raise AtomError.in_file(filename, f"when.role has unknown role(s) {bad}; allowed: {[*ROLES, OTHER]}")
        parts["roles"] = frozenset(roles)
        why.append(f"role is {_fmt_list(roles)}")
    if "vertical" in raw:
        verticals = _str_list(filename, "vertical", raw["vertical"])
        bad = [v for v in verticals if v not in VERTICAL_VALUES]
        if bad:
            allowed_verticals = list(VERTICALS)
            raise AtomError.in_file(
                filename, f"when.vertical has unknown vertical(s) {bad}; allowed: {allowed_verticals}"
            )
        parts["verticals"] = frozenset(verticals)
        why.append(f"vertical is {_fmt_list(verticals)}")
    if "stack_any" in raw:
        items = _str_list(filename, "stack_any", raw["stack_any"])
        parts["stack_any"] = frozenset(i.casefold() for i in items)
        why.append(f"stack includes {_fmt_list(items)}")
    if "stack_category" in raw:
        cats = _str_list(filename, "stack_category", raw["stack_category"])
        bad = [c for c in cats if c not in STACK_CATEGORY_NAMES]
        if bad:
            allowed = list(STACK_CATEGORY_NAMES)
            raise AtomError.in_file(filename, f"when.stack_category has unknown value(s) {bad}; allowed: {allowed}")
        parts["stack_categories"] = frozenset(cats)
        why.append(f"stack has {_fmt_list(cats)} technology")
    ranges: list[tuple[str, int, int]] = []
    for slider in SLIDERS:
        if slider not in raw:
            continue
        value = raw[slider]
        if not (
            isinstance(value, list)
            and len(value) == 2
            and all(_is_int(v) for v in value)
            and 0 <= value[0] <= value[1] <= 10
        ):
            raise AtomError.in_file(
                filename, f"when.{slider} must be an inclusive range [low, high] within 0–10, got {value!r}"
            )
        ranges.append((slider, value[0], value[1]))
        why.append(f"{slider} is {value[0]}–{value[1]}")
    parts["ranges"] = tuple(ranges)
    if "agent" in raw:
        agents = _str_list(filename, "agent", raw["agent"])
        parts["agents"] = frozenset(agents)
        why.append(f"agent is {_fmt_list(agents)}")
    empty: frozenset[str] = frozenset()
    groups = _groups(
        parts.get("roles", empty),
        parts.get("verticals", empty),
        parts.get("stack_any", empty),
        parts.get("stack_categories", empty),
        parts["ranges"],
        parts.get("agents", empty),
    )
    return Condition(**parts, why=" and ".join(why), groups=groups)


def _compile(filename: str, body: str) -> tuple[tuple[tuple[str, str], ...], frozenset[str]]:
    pieces: list[tuple[str, str]] = []
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(body))
    except ValueError as exc:
        problem = f"bad placeholder syntax in body ({exc}); write {{{{ and }}}} for literal braces"
        raise AtomError.in_file(filename, problem) from None
    for literal, name, spec, conversion in parsed:
        if name is None:
            pieces.append((literal, ""))
            continue
        if name not in ALLOWED_PLACEHOLDERS:
            raise AtomError.in_file(
                filename,
                f"unknown placeholder {{{name}}}; allowed: {', '.join(sorted(ALLOWED_PLACEHOLDERS))}",
            )
        if spec or conversion:
            raise AtomError.in_file(filename, f"placeholder {{{name}}} may not have a format spec or conversion")
        names.add(name)
        pieces.append((literal, name))
    return tuple(pieces), frozenset(names)


def parse_atom(filename: str, text: str) -> Atom:
    """Parse one atom file's text; ``filename`` is used in error messages."""
    front, body = _split_front_matter(filename, text)
    try:
        meta = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise AtomError.in_file(filename, f"front matter is not valid YAML: {detail}") from None
    if not isinstance(meta, dict):
        raise AtomError.in_file(filename, "front matter must be a YAML mapping (key: value lines)")
    unknown = sorted(str(k) for k in meta if k not in _FRONT_KEYS)
    if unknown:
        allowed_keys = sorted(_FRONT_KEYS)
        raise AtomError.in_file(filename, f"unknown front matter key(s) {', '.join(unknown)}; allowed: {allowed_keys}")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise AtomError.in_file(filename, f"missing required field(s) {', '.join(missing)}")
    atom_id = meta["id"]
    if not isinstance(atom_id, str) or not _ID.match(atom_id):
        raise AtomError.in_file(filename, f"id must be lower-case letters, digits and '-', got {atom_id!r}")
    version, order = meta["version"], meta["order"]
    if not _is_int(version) or version < 1:
        raise AtomError.in_file(filename, f"version must be an integer >= 1, got {version!r}")
    if not _is_int(order):
        raise AtomError.in_file(filename, f"order must be an integer, got {order!r}")
    description = meta["description"]
    if not isinstance(description, str) or not description.strip():
        raise AtomError.in_file(filename, "description must be a non-empty string")
    kind = meta.get("kind", "atom")
    if kind not in ("atom", "agent"):
        raise AtomError.in_file(filename, f"kind must be 'atom' or 'agent', got {kind!r}")
    title = meta.get("title", "")
    if kind == "agent":
        if not isinstance(title, str) or not title.strip():
            raise AtomError.in_file(filename, "an agent needs a non-empty `title`")
        if "when" in meta:
            raise AtomError.in_file(filename, "an agent applies when it is chosen; remove its `when`")
    elif "title" in meta:
        raise AtomError.in_file(filename, "`title` is only for atoms of `kind: agent`")
    when = _parse_when(filename, meta.get("when"))
    body = body.strip()
    if not body:
        raise AtomError.in_file(filename, "body is empty")
    for marker in FENCE_CHARS:
        if marker in body:
            raise AtomError.in_file(filename, f"body contains {marker!r}, reserved for the profile data fence")
    pieces, names = _compile(filename, body)
    if when.is_vibe_only and names - set(SLIDERS):
        raise AtomError.in_file(
            filename,
            "a vibe atom (only slider conditions) may use only slider placeholders, "
            f"found {sorted(names - set(SLIDERS))}",
        )
    return Atom(
        id=atom_id,
        version=version,
        order=order,
        description=" ".join(description.split()),
        body=body,
        pieces=pieces,
        placeholders=names,
        when=when,
        kind=kind,
        title=" ".join(str(title).split()),
        filename=filename,
        has_profile_data="profile_data" in names,
    )
