"""The atom library: every prompt atom of ``prompts/atoms/``, loaded, validated and cached.

``load_atoms(directory)`` parses each ``*.md`` file (``core.atom_parsing``: the file format and
one file's checks), then checks what spans files — unique ids, every ``when.agent`` names an
agent, ``{profile_data}`` used by one atom only — and returns an ``AtomLibrary`` sorted by
(order, id). Libraries are cached by a sha256 of the directory's files, so an edited atom is picked
up on the next call while an unchanged directory is validated only once. ``app_atoms()`` is the
running app's one library.

Every problem raises ``AtomError`` whose message starts with the offending file.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, NamedTuple

from core.atom_parsing import Atom, AtomError, parse_atom

DEFAULT_ATOMS_DIR: Final = Path(__file__).resolve().parent.parent / "prompts" / "atoms"


class PlanEntry(NamedTuple):
    """An atom flattened for the assembler's hot loop (built once per library)."""

    groups: tuple[frozenset[str], ...]
    agent_id: str  # the atom's id when it is an agent, else ""
    atom_id: str
    version: int
    why: str
    static: str | None  # the body when it has no placeholders
    pieces: tuple[tuple[str, str], ...]
    has_profile_data: bool


@dataclass(frozen=True)
class AtomLibrary:
    """All atoms of a directory, validated, sorted by (order, id)."""

    atoms: tuple[Atom, ...]
    content_hash: str
    directory: Path
    _by_id: Mapping[str, Atom] = field(repr=False, compare=False, default_factory=dict)

    _agent_ids: frozenset[str] = field(repr=False, compare=False, default=frozenset())
    _plan: tuple[PlanEntry, ...] = field(repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {a.id: a for a in self.atoms})
        object.__setattr__(self, "_agent_ids", frozenset(a.id for a in self.atoms if a.kind == "agent"))
        plan = tuple(
            PlanEntry(
                groups=a.when.groups,
                agent_id=a.id if a.kind == "agent" else "",
                atom_id=a.id,
                version=a.version,
                why=a.when.why,
                static=None if a.placeholders else a.body,
                pieces=a.pieces,
                has_profile_data=a.has_profile_data,
            )
            for a in self.atoms
        )
        object.__setattr__(self, "_plan", plan)

    def plan(self) -> tuple[PlanEntry, ...]:
        """The atoms in prompt order, flattened for the assembler (see ``PlanEntry``)."""
        return self._plan

    def __contains__(self, atom_id: object) -> bool:
        return atom_id in self._by_id

    def __len__(self) -> int:
        return len(self.atoms)

    def get(self, atom_id: str) -> Atom:
        return self._by_id[atom_id]

    def agents(self) -> list[tuple[str, str, str]]:
        """Advisor modes a user can pick per conversation: ``(id, title, description)``, in order."""
        return [(a.id, a.title, a.description) for a in self.atoms if a.kind == "agent"]

    def agent_ids(self) -> frozenset[str]:
        return self._agent_ids

    def vibe_atoms(self) -> tuple[Atom, ...]:
        """Atoms that depend on nothing but the vibe sliders (the vibe page previews these)."""
        return tuple(a for a in self.atoms if a.kind == "atom" and a.when.is_vibe_only)


def _build(directory: Path, files: list[tuple[Path, bytes]], digest: str) -> AtomLibrary:
    atoms: list[Atom] = []
    seen: dict[str, str] = {}
    for path, data in files:
        filename = str(path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AtomError.in_file(filename, f"is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        atom = parse_atom(filename, text)
        if atom.id in seen:
            raise AtomError.in_file(filename, f"duplicate id {atom.id!r} (also in {seen[atom.id]})")
        seen[atom.id] = filename
        atoms.append(atom)
    agents = {a.id for a in atoms if a.kind == "agent"}
    data_users: list[str] = []
    for atom in atoms:
        missing = sorted(atom.when.agents - agents)
        if missing:
            known = sorted(agents)
            raise AtomError.in_file(atom.filename, f"when.agent names unknown agent(s) {missing}; known: {known}")
        if "profile_data" in atom.placeholders:
            data_users.append(atom.filename)
            if atom.body.count("{profile_data}") != 1 or atom.when.why != "always" or atom.kind != "atom":
                raise AtomError.in_file(atom.filename, "{profile_data} must appear once, in an atom without `when`")
    if len(data_users) > 1:
        problem = f"{{profile_data}} is already used by {data_users[0]}; only one atom may"
        raise AtomError.in_file(data_users[1], problem)
    atoms.sort(key=lambda a: (a.order, a.id))
    return AtomLibrary(atoms=tuple(atoms), content_hash=digest, directory=directory)


_cache: dict[tuple[str, str], AtomLibrary] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 8


def load_atoms(directory: Path | None = None) -> AtomLibrary:
    """Load and validate every ``*.md`` atom in ``directory`` (default ``prompts/atoms``).

    The result is cached under a sha256 of the files' names and bytes: calling this on every chat
    turn costs one directory read, and an edited, added or removed file yields a fresh library.
    Raises ``AtomError`` (message ``<file>: <problem>``) for any malformed atom.
    """
    directory = (directory or DEFAULT_ATOMS_DIR).resolve()
    if not directory.is_dir():
        raise AtomError(f"{directory}: atom directory does not exist")
    files = [(p, p.read_bytes()) for p in sorted(directory.glob("*.md"))]
    hasher = hashlib.sha256()
    for path, data in files:
        hasher.update(path.name.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0" + data)
    digest = hasher.hexdigest()
    key = (str(directory), digest)
    with _cache_lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    library = _build(directory, files, digest)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = library
    return library


def clear_atom_cache() -> None:
    """For tests: forget every cached library."""
    with _cache_lock:
        _cache.clear()


_app_library: AtomLibrary | None = None


def app_atoms() -> AtomLibrary:
    """The running app's atom library: loaded (and validated) once per process, then reused.

    Chat turns, the prompt preview and the vibe page all read this one library, so the preview
    shows exactly the prompt a turn sends; ``load_atoms()`` re-reads the files on every call.
    After editing atoms in a running process, call ``reload_app_atoms()`` (or restart).
    """
    global _app_library
    if _app_library is None:
        _app_library = load_atoms()
    return _app_library


def reload_app_atoms() -> None:
    """Forget the app's library; the next ``app_atoms()`` loads the files again."""
    global _app_library
    _app_library = None
