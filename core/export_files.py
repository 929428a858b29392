"""Prepared exports waiting for download: ZIP files under ``<data dir>/exports``.

The privacy page streams a user's export (``core.export``) into a file here, shows its size, and hands
it to the browser when the user clicks download; only the file's path is kept in the session. A file
is removed when its session prepares a new one or deletes the account, when it is older than
``EXPORT_FILE_LIFETIME`` (checked each time the page runs), and when the app starts
(``remove_export_files()`` with no age: no session of an earlier process can still want it). Files
get random names (no user id), in a directory only the app's own user can read.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

from sqlalchemy.engine import Engine

from core.export import Progress, export_file_name, export_user_data
from core.settings import Settings, get_settings

__all__ = ["EXPORT_FILE_LIFETIME", "ExportFile", "exports_dir", "remove_export_files", "write_export_file"]

EXPORT_FILE_LIFETIME: Final = timedelta(hours=1)
_SUFFIX: Final = ".zip"
_PARTIAL: Final = ".part"


@dataclass(frozen=True)
class ExportFile:
    """A user's export written to disk, ready to download."""

    user_id: uuid.UUID
    path: Path
    file_name: str  # the name offered to the browser
    size: int

    def exists(self) -> bool:
        return self.path.is_file()

    def read(self) -> bytes:
        """The archive's bytes. Raises ``FileNotFoundError`` once the file has been removed."""
        return self.path.read_bytes()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def exports_dir(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).data_dir / "exports"


def write_export_file(
    *,
    user_id: uuid.UUID,
    directory: Path | None = None,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> ExportFile:
    """Stream the export of ``user_id`` into a new file of ``directory`` (default ``exports_dir()``).

    The file appears under its final name only when complete; on any error nothing is left behind.
    Raises ``NotFound`` when the user does not exist.
    """
    directory = directory or exports_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stem = uuid.uuid4().hex
    partial = directory / f"{stem}{_PARTIAL}"
    final = directory / f"{stem}{_SUFFIX}"
    try:
        with partial.open("xb") as out:
            size = export_user_data(user_id=user_id, out=out, progress=progress, engine=engine)
        partial.rename(final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return ExportFile(user_id=user_id, path=final, file_name=export_file_name(), size=size)


def remove_export_files(directory: Path | None = None, *, older_than: timedelta | None = None) -> int:
    """Remove prepared exports (all of them, or those last written more than ``older_than`` ago).

    Returns how many files were removed.
    """
    directory = directory or exports_dir()
    if not directory.is_dir():
        return 0
    cutoff = None if older_than is None else time.time() - older_than.total_seconds()
    removed = 0
    for path in directory.iterdir():
        if path.suffix not in (_SUFFIX, _PARTIAL) or not path.is_file():
            continue
        with contextlib.suppress(FileNotFoundError):  # another session removed it meanwhile
            if cutoff is None or path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
