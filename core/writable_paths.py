"""Where the read-only guard lets the app write files (claim C12).

Writable: ``settings.data_dir`` (resolved when the guard is installed), the directory of a
configured SQLite database (and the database file itself), the ``extra_writable`` directories given
to ``core.guard.install_guard``, ``/dev/null``, and byte-code caches (``*.pyc`` files in a
``__pycache__`` directory). Paths are compared after ``os.path.realpath``, so a symlink or ``..``
cannot lead out of a writable directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, NamedTuple

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = ["PATH_ARGUMENTS", "WritableArea", "is_writable_path", "sqlite_file", "writable_area"]

# audit events that write to a path -> [(index of a path argument, index of its dir_fd argument or None)]
PATH_ARGUMENTS: Final[dict[str, list[tuple[int, int | None]]]] = {
    "os.remove": [(0, 1)],
    "os.rmdir": [(0, 1)],
    "os.rename": [(0, 2), (1, 3)],
    "os.link": [(1, 3)],
    "os.symlink": [(1, 2)],
    "os.mkdir": [(0, 2)],
    "os.mkfifo": [(0, 2)],
    "os.mknod": [(0, 3)],
    "os.chmod": [(0, 2)],
    "os.chown": [(0, 3)],
    "os.utime": [(0, 3)],
    "os.truncate": [(0, None)],
    "os.setxattr": [(0, None)],
    "os.removexattr": [(0, None)],
    "shutil.rmtree": [(0, 1)],
    "shutil.copyfile": [(1, None)],
    "shutil.copytree": [(1, None)],
    "shutil.move": [(0, None), (1, None)],
}


class WritableArea(NamedTuple):
    directories: tuple[str, ...]  # resolved directories (no trailing separator)
    files: frozenset[str]  # resolved files outside those directories


def sqlite_file(database_url: str) -> str | None:
    """The resolved path of a SQLite database file (``None``: not SQLite, or in memory)."""
    if not database_url.startswith("sqlite"):
        return None
    path = database_url.split("://", 1)[1] if "://" in database_url else ""
    path = path[1:] if path.startswith("/") else path  # sqlite:///rel, sqlite:////abs
    path = path.split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return os.path.realpath(path)


def writable_area(settings: Settings, extra_writable: Iterable[str | os.PathLike[str]] = ()) -> WritableArea:
    """The directories and files the app may write under ``settings`` (see the module docstring)."""
    writable = [os.path.realpath(settings.data_dir), *(os.path.realpath(p) for p in extra_writable)]
    files: set[str] = {"/dev/null"}
    db_file = sqlite_file(settings.database_url)
    if db_file is not None:
        writable.append(os.path.dirname(db_file))
        files.add(db_file)
    return WritableArea(
        directories=tuple(dict.fromkeys(w.rstrip(os.sep) or os.sep for w in writable)),
        files=frozenset(files),
    )


def is_writable_path(
    directories: tuple[str, ...], files: frozenset[str], raw: Any, dir_fd: Any = None
) -> tuple[bool, str]:
    """Whether the path an audit event names (``raw``, relative to ``dir_fd`` when given) may be
    written under ``writable_area``'s ``directories`` and ``files``; and the resolved path to show."""
    if isinstance(raw, int):  # an already open file descriptor: its open was checked
        return True, f"fd {raw}"
    try:
        path = os.fsdecode(raw)
    except TypeError:
        return False, repr(raw)
    if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(path):
        try:
            base = os.readlink(f"/proc/self/fd/{dir_fd}")
        except OSError:
            return False, path
        path = os.path.join(base, path)
    full = os.path.realpath(path)
    if full in files:
        return True, full
    for root in directories:
        if full == root or full.startswith(root + os.sep):
            return True, full
    parent, name = os.path.split(full)
    if os.path.basename(parent) == "__pycache__" and ".pyc" in name:
        return True, full
    if name == "__pycache__":
        return True, full
    return False, full
