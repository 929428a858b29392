"""Export everything held about a user as a ZIP archive, streamed as it is built (C17).

``iter_export_zip()`` yields the bytes of the archive as they are made: the user's rows are read in
batches (``yield_per``), serialised with ``json`` and ``csv``, and compressed by ``zipfile`` into an
in-memory sink that is handed out in chunks, so memory stays flat however many runs a user has. The
runs are read once for both of their files: the CSV text waits in a temporary file while the JSON
lines are written. The same code runs on SQLite and PostgreSQL. It reads in
``user_session(user_id)`` (row-level security on PostgreSQL), in one REPEATABLE READ transaction
there (one consistent snapshot), and also filters every query by the user id. The tables are those
of the catalogue (``core.user_tables``).

Contents: ``profile.json``, ``vibe_configs.json``, ``conversations.json``, ``agent_runs.jsonl``,
``agent_runs.csv``, ``extra/<table>.jsonl`` for tables the export has no file of its own for,
``README.txt`` and, last, ``manifest.json`` (schema revision, export time, row counts, sha256 and
size of every file). ``users.password_hash`` is the one value left out (README.txt says so). JSON
files hold the stored values exactly; in the CSV file a text cell that a spreadsheet would run as a
formula is written with a ``'`` in front (``core.export_values.csv_cell``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Any, BinaryIO, Final, overload

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from core.db import NotFound, get_engine, user_session
from core.export_readme import readme_text
from core.export_values import JSON_ENCODER, csv_cell, json_converter
from core.settings import get_settings
from core.user_tables import EXCLUDED_COLUMNS, OwnedTable, count_owned_rows, user_data_tables
from models.types import utcnow

__all__ = [
    "CHUNK_BYTES",
    "EXPORT_FORMAT_VERSION",
    "Progress",
    "export_file_name",
    "export_user_data",
    "iter_export_zip",
]

EXPORT_FORMAT_VERSION: Final = 1
BATCH_ROWS: Final = 500  # rows per fetch: memory holds about this many rows at a time
CHUNK_BYTES: Final = 256 * 1024  # hand compressed bytes out once this many are waiting
COMPRESS_LEVEL: Final = 1  # zlib's fastest level: chat text still shrinks several times

# Files of the known tables, in archive order. Any other user-owned table → extra/<table>.jsonl.
_PROFILE_TABLES: Final = ("users", "user_profiles")
_JSON_ARRAY_FILES: Final = {"vibe_configs": "vibe_configs.json", "conversations": "conversations.json"}
_RUNS_TABLE: Final = "agent_runs"

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------
# the archive
# --------------------------------------------------------------------------------------------
class _Sink:
    """A write-only, non-seekable target for ``zipfile`` that hands its bytes out on demand."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.pending = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self.pending += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        self.pending = 0
        return data


@dataclass
class _FileStats:
    rows: int = 0
    size: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)


class _Text:
    """Text of one file on its way out: counted, hashed and written, as UTF-8, to ``fh``."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.stats = _FileStats()
        self._fh = fh

    def write(self, text: str, rows: int = 0) -> None:
        data = text.encode("utf-8")
        self.stats.sha256.update(data)
        self.stats.size += len(data)
        self.stats.rows += rows
        self._fh.write(data)


class _Member(_Text):
    """One file of the archive being written (compressed by ``zipfile``)."""

    def __init__(self, zf: zipfile.ZipFile, name: str, *, large: bool) -> None:
        super().__init__(zf.open(name, "w", force_zip64=large))
        self.name = name

    def copy(self, spool: IO[bytes], stats: _FileStats) -> Iterator[None]:
        """Write the text held in ``spool`` (counted and hashed as ``stats`` while it was written there),
        a block at a time; yields after each block."""
        self.stats = stats
        spool.seek(0)
        while block := spool.read(CHUNK_BYTES):
            self._fh.write(block)
            yield

    def close(self) -> None:
        self._fh.close()


class _Export:
    """The archive of one user, written file by file from one connection (one snapshot)."""

    def __init__(self, conn: Connection, user_id: uuid.UUID, progress: Progress | None) -> None:
        self.conn = conn
        self.user_id = user_id
        self.progress = progress
        self.sink = _Sink()
        self.zf = zipfile.ZipFile(self.sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL)
        self.files: dict[str, _FileStats] = {}
        self.table_files: dict[str, list[str]] = {}
        self.row_counts: dict[str, int] = {}
        self.done = 0
        self.total = 0

    # -- helpers ---------------------------------------------------------------------------
    def _ready(self) -> Iterator[bytes]:
        if self.sink.pending >= CHUNK_BYTES:
            yield self.sink.take()

    def _tick(self, rows: int) -> None:
        self.done += rows
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)

    def _open(self, name: str, tables: tuple[str, ...], *, large: bool = False) -> _Member:
        for t in tables:
            self.table_files.setdefault(t, []).append(name)
        return _Member(self.zf, name, large=large)

    def _close(self, member: _Member) -> None:
        member.close()
        self.files[member.name] = member.stats

    def _batches(self, t: OwnedTable) -> Iterator[list[tuple[Any, ...]]]:
        """The user's rows of ``t`` in export order, ``BATCH_ROWS`` at a time, values as in JSON."""
        stmt = (
            select(*t.clause.columns)
            .where(t.owned_by(self.user_id))
            .order_by(*(t.clause.c[name] for name in t.order_by))
        )
        converters = [(i, f) for i, c in enumerate(t.clause.columns) if (f := json_converter(c.type)) is not None]
        result = self.conn.execute(stmt, execution_options={"yield_per": BATCH_ROWS})
        for part in result.partitions():
            columns: list[Sequence[Any]] = list(zip(*part, strict=True))
            for i, convert in converters:
                columns[i] = [None if v is None else convert(v) for v in columns[i]]
            yield list(zip(*columns, strict=True))

    def _objects(self, t: OwnedTable) -> Iterator[list[dict[str, Any]]]:
        names = t.column_names
        for batch in self._batches(t):
            yield [dict(zip(names, row, strict=True)) for row in batch]

    # -- files -----------------------------------------------------------------------------
    def _profile(self, tables: dict[str, OwnedTable]) -> Iterator[bytes]:
        users = [r for batch in self._objects(tables["users"]) for r in batch]
        if len(users) != 1:
            raise NotFound("no such user")
        profiles = [r for batch in self._objects(tables["user_profiles"]) for r in batch]
        w = self._open("profile.json", _PROFILE_TABLES)
        doc = {"user": users[0], "profile": profiles[0] if profiles else None}
        w.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", rows=len(users) + len(profiles))
        self._close(w)
        self.row_counts["users"] = len(users)
        self.row_counts["user_profiles"] = len(profiles)
        self._tick(len(users) + len(profiles))
        yield from self._ready()

    def _json_array(self, t: OwnedTable, name: str) -> Iterator[bytes]:
        w = self._open(name, (t.name,))
        w.write("[")
        first = True
        for batch in self._objects(t):
            parts = []
            for row in batch:
                parts.append(("\n  " if first else ",\n  ") + JSON_ENCODER.encode(row))
                first = False
            w.write("".join(parts), rows=len(batch))
            self._tick(len(batch))
            yield from self._ready()
        w.write("\n]\n" if not first else "]\n")
        self._close(w)
        self.row_counts[t.name] = w.stats.rows
        yield from self._ready()

    def _jsonl(self, t: OwnedTable, name: str) -> Iterator[bytes]:
        w = self._open(name, (t.name,), large=True)
        for batch in self._objects(t):
            w.write("\n".join(map(JSON_ENCODER.encode, batch)) + "\n", rows=len(batch))
            self._tick(len(batch))
            yield from self._ready()
        self._close(w)
        self.row_counts[t.name] = w.stats.rows
        yield from self._ready()

    def _runs(self, t: OwnedTable) -> Iterator[bytes]:
        """``agent_runs.jsonl`` and ``agent_runs.csv`` from one read of the runs. A ZIP holds its files
        one after the other, so the CSV text waits in an unnamed temporary file (private to this
        process, gone once closed) while the JSON lines are written, and is copied in after them. The
        file is made in the data directory: the only place the app may write (C12)."""
        names = t.column_names
        jsonl = self._open("agent_runs.jsonl", (t.name,), large=True)
        spool_dir = get_settings().data_dir
        spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=spool_dir) as spool:
            table = _Text(spool)
            buf = io.StringIO()
            out = csv.writer(buf, lineterminator="\r\n")
            out.writerow(names)
            table.write(buf.getvalue())
            for batch in self._batches(t):
                lines = [JSON_ENCODER.encode(dict(zip(names, row, strict=True))) for row in batch]
                jsonl.write("\n".join(lines) + "\n", rows=len(batch))
                buf.seek(0)
                buf.truncate(0)
                out.writerows(map(csv_cell, row) for row in batch)
                table.write(buf.getvalue(), rows=len(batch))
                self._tick(2 * len(batch))  # a line and a CSV row each
                yield from self._ready()
            self._close(jsonl)
            self.row_counts[t.name] = jsonl.stats.rows
            yield from self._ready()
            w = self._open("agent_runs.csv", (t.name,), large=True)
            for _ in w.copy(spool, table.stats):
                yield from self._ready()
            self._close(w)
        yield from self._ready()

    def _text(self, name: str, text: str) -> Iterator[bytes]:
        w = self._open(name, ())
        w.write(text)
        self._close(w)
        yield from self._ready()

    # -- the archive -----------------------------------------------------------------------
    def run(self) -> Iterator[bytes]:
        catalogue = user_data_tables(self.conn)
        tables = {t.name: t for t in catalogue}
        missing = [n for n in (*_PROFILE_TABLES, *_JSON_ARRAY_FILES, _RUNS_TABLE) if n not in tables]
        if missing:
            raise RuntimeError(f"the catalogue lacks {', '.join(missing)}")
        revision = self.conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        exported_at = utcnow()
        counts = {t.name: count_owned_rows(self.conn, t, self.user_id) for t in catalogue}
        self.total = sum(counts.values()) + counts[_RUNS_TABLE]  # runs are written twice
        self._tick(0)

        yield from self._profile(tables)
        for table_name, file_name in _JSON_ARRAY_FILES.items():
            yield from self._json_array(tables[table_name], file_name)
        yield from self._runs(tables[_RUNS_TABLE])
        known = {*_PROFILE_TABLES, *_JSON_ARRAY_FILES, _RUNS_TABLE}
        for t in catalogue:
            if t.name not in known:
                yield from self._jsonl(t, f"extra/{t.name}.jsonl")
        yield from self._text("README.txt", readme_text(catalogue))

        manifest = {
            "format": "advisor-export",
            "format_version": EXPORT_FORMAT_VERSION,
            "schema_version": revision,
            "exported_at": exported_at.isoformat(),
            "user_id": str(self.user_id),
            "row_counts": {t.name: self.row_counts.get(t.name, 0) for t in catalogue},
            "tables": {t.name: self.table_files.get(t.name, []) for t in catalogue},
            "excluded_columns": {k: sorted(v) for k, v in EXCLUDED_COLUMNS.items()},
            "files": {
                name: {"sha256": s.sha256.hexdigest(), "bytes": s.size, "rows": s.rows}
                for name, s in self.files.items()
            },
        }
        w = self._open("manifest.json", ())
        w.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        w.close()
        self.zf.close()
        yield self.sink.take()


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def _read_engine(engine: Engine) -> Engine:
    # One snapshot for the whole export on PostgreSQL (SQLite transactions are serializable).
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="REPEATABLE READ")
    return engine


def iter_export_zip(
    *, user_id: uuid.UUID, progress: Progress | None = None, engine: Engine | None = None
) -> Generator[bytes, None, None]:
    """The user's export as a stream of ZIP bytes (chunks of about ``CHUNK_BYTES``).

    ``progress(done, total)`` is called after each batch of rows. The database transaction stays
    open while the caller iterates; closing the iterator early rolls it back.
    Raises ``NotFound`` when the user does not exist (or is not visible to this identity).
    """
    engine = _read_engine(engine or get_engine())
    with user_session(user_id, engine=engine) as session:
        yield from _Export(session.connection(), user_id, progress).run()


@overload
def export_user_data(
    *, user_id: uuid.UUID, out: None = None, progress: Progress | None = None, engine: Engine | None = None
) -> bytes: ...
@overload
def export_user_data(
    *, user_id: uuid.UUID, out: BinaryIO, progress: Progress | None = None, engine: Engine | None = None
) -> int: ...
def export_user_data(
    *,
    user_id: uuid.UUID,
    out: BinaryIO | None = None,
    progress: Progress | None = None,
    engine: Engine | None = None,
) -> bytes | int:
    """Export everything held about ``user_id`` as a ZIP.

    With ``out`` the archive is streamed into it (any writable binary stream, seekable or not) and
    the number of bytes written is returned; without it the archive is returned as bytes.
    """
    chunks = iter_export_zip(user_id=user_id, progress=progress, engine=engine)
    if out is None:
        return b"".join(chunks)
    size = 0
    for chunk in chunks:
        out.write(chunk)
        size += len(chunk)
    return size


def export_file_name(today: date | None = None) -> str:
    """The name offered for the downloaded archive: ``advisor-export-<UTC date>.zip``."""
    return f"advisor-export-{(today or utcnow().date()).isoformat()}.zip"
