"""Everything we hold about a user: export it (a streamed ZIP) or delete it (one transaction).

Claims C17 and C18 in ``SECURITY-CLAIMS.md``.

**Which tables.** Both functions find the user's tables in the database catalogue (SQLAlchemy
reflection), not in a hand-written list: ``users`` (owner column ``id``) and every table with a
``user_id`` column or a foreign key to ``users.id``. A table added by a future migration is therefore
exported (as ``extra/<table>.jsonl``) and deleted without a change here. Known tables are read with
their model column types, so values come back as uuids, UTC datetimes, decimals and JSON.

**Export.** ``iter_export_zip()`` yields the bytes of a ZIP archive as it is built: rows are read in
batches, serialised, compressed and handed out, so memory stays flat however many runs a user has,
and nothing is written to disk (the runtime guard forbids it outside the data directory anyway). On
PostgreSQL the database renders the lines of the large files (``agent_runs.jsonl``,
``agent_runs.csv``, ``extra/*.jsonl``) itself, byte for byte as the Python serialiser would, except
that the values of long text columns come raw and are quoted in Python (``_pg_line_query``; a table
with a column type it does not know takes the Python path); the rows are streamed, and a worker
thread puts batches together, hashes and compresses them (ISA-L's deflate when ``isal`` is
installed, zlib's otherwise) while the next ones are read. On SQLite the rows are read with
``yield_per`` and serialised in Python. It reads in ``user_session(user_id)``
(row-level security on PostgreSQL), in one REPEATABLE READ transaction there (one consistent
snapshot), and also filters every query by the user id. Contents: ``profile.json``,
``vibe_configs.json``, ``conversations.json``, ``agent_runs.jsonl``, ``agent_runs.csv``,
``extra/<table>.jsonl`` for unknown tables, ``README.txt`` and, last, ``manifest.json`` (schema
revision, export time, row counts, sha256 and size of every file). ``users.password_hash`` is the one
value left out (README.txt says so).

**Deletion.** ``delete_user()`` removes, in one ``user_session(user_id)`` transaction, every row that
carries the user id in every catalogued table, children before parents (foreign-key order), then the
``users`` row; checks that nothing is left; and writes a ``deletion_records`` row whose only link to
the person is an HMAC-SHA256 of the id keyed with ``settings.deletion_salt``. On PostgreSQL the rows
a user session may not erase (usage counters, sign-in records) are deleted, and the deletion record
written, as ``advisor_system`` within that transaction. Any error rolls all of it back. After the
commit it clears the user's rate-limit keys (``core.limits.clear_user_limits``, when that module
provides it); the page clears Streamlit's caches.
"""

from __future__ import annotations

import csv
import hashlib
import importlib
import io
import json
import logging
import uuid
import zipfile
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from itertools import chain, islice
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final, Literal, overload

from sqlalchemy import (
    CHAR,
    JSON,
    Boolean,
    ColumnElement,
    DateTime,
    Enum,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
    bindparam,
    func,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.sql.expression import TableClause, column, table
from sqlalchemy.types import TypeDecorator, TypeEngine

from core import finishing
from core.db import APP_ROLE, SYSTEM_ROLE, NotFound, get_engine, set_local_role, user_session
from core.settings import secret_hmac
from models import DeletionRecord
from models import metadata as model_metadata
from models.types import UTCDateTime, utcnow

try:  # ISA-L's deflate: the same raw deflate stream as zlib's, several times faster at low levels
    from isal import isal_zlib
except ImportError:  # pragma: no cover - isal is in requirements.txt; zlib does the same job, slower
    isal_zlib = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql as pgsql

__all__ = [
    "EXCLUDED_COLUMNS",
    "EXPORT_FORMAT_VERSION",
    "DeletionReceipt",
    "OwnedTable",
    "delete_user",
    "export_file_name",
    "export_user_data",
    "iter_export_zip",
    "subject_hash",
    "user_data_tables",
]

log = logging.getLogger("advisor.privacy")

EXPORT_FORMAT_VERSION: Final = 1
ROOT_TABLE: Final = "users"
OWNER_COLUMN: Final = "user_id"
# Values we hold but never hand out: a password hash is a secret, not information about the person.
EXCLUDED_COLUMNS: Final[dict[str, frozenset[str]]] = {"users": frozenset({"password_hash"})}
BATCH_ROWS: Final = 500  # rows per fetch / batch (memory: ~batch x row size x a few copies)
CHUNK_BYTES: Final = 256 * 1024  # hand compressed bytes out once this many are waiting
PIPELINE_BATCHES: Final = 2  # batches of lines in flight: queued or being compressed
COMPRESS_LEVEL: Final = 1  # zlib level 1 (fallback): ~3-5x on chat text at several times the speed of level 6
ISAL_LEVEL: Final = 1  # ISA-L level 1: about zlib 1's ratio (a little better) at ~3.5x its speed

# Files of the known tables, in archive order. Any other user-owned table → extra/<table>.jsonl.
_JSON_ARRAY_FILES: Final = {"vibe_configs": "vibe_configs.json", "conversations": "conversations.json"}
_RUNS_TABLE: Final = "agent_runs"
_PROFILE_TABLES: Final = ("users", "user_profiles")

Progress = Callable[[int, int], None]


# --------------------------------------------------------------------------------------------
# the catalogue
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OwnedTable:
    """A table holding a user's rows: its owner columns and its columns (typed for reading)."""

    name: str
    owner_columns: tuple[str, ...]
    clause: TableClause
    order_by: tuple[str, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.clause.columns]

    def owned_by(self, user_id: uuid.UUID) -> ColumnElement[bool]:
        uid = bindparam("owner_uid", user_id, type_=Uuid())
        return or_(*(self.clause.c[name] == uid for name in self.owner_columns))


def _owner_columns(t: Table) -> tuple[str, ...]:
    if t.name == ROOT_TABLE:
        return ("id",)
    names = [c.name for c in t.columns if c.name == OWNER_COLUMN]
    for fk in t.foreign_keys:
        if fk.column.table.name == ROOT_TABLE and fk.column.name == "id" and fk.parent.name not in names:
            names.append(fk.parent.name)
    return tuple(names)


def user_data_tables(conn: Connection) -> list[OwnedTable]:
    """Every table of the live schema that holds rows of a user, parents before children.

    ``users`` (owner column ``id``) and each table with a ``user_id`` column or a foreign key to
    ``users.id``, as the database catalogue has them now. Columns of tables that the models know are
    typed like the models (uuids, UTC datetimes, JSON); other columns keep their reflected type.
    Excluded columns (``EXCLUDED_COLUMNS``) are left out of ``clause``.
    """
    reflected = MetaData()
    reflected.reflect(bind=conn)
    out: list[OwnedTable] = []
    for t in reflected.sorted_tables:
        owners = _owner_columns(t)
        if not owners:
            continue
        model = model_metadata.tables.get(t.name)
        excluded = EXCLUDED_COLUMNS.get(t.name, frozenset())
        cols = []
        for c in t.columns:
            if c.name in excluded:
                continue
            typ: TypeEngine[Any] = model.c[c.name].type if model is not None and c.name in model.c else c.type
            cols.append(column(c.name, typ))
        pk = [c.name for c in t.primary_key.columns]
        order = (["created_at"] if "created_at" in t.c and "created_at" not in pk else []) + pk
        out.append(OwnedTable(t.name, owners, table(t.name, *cols), tuple(order or owners)))
    if not out or out[0].name != ROOT_TABLE:
        raise RuntimeError("the catalogue has no users table")
    return out


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------
_SIMPLE: Final = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """A value as it appears in JSON: uuids, datetimes and decimals as strings, JSON as is."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo is None else value.astimezone(UTC)).isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")  # never "1E-8"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def csv_cell(value: Any) -> str:
    """How a JSON value of ``agent_runs.jsonl`` is written in ``agent_runs.csv`` (README.txt)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# PostgreSQL renders the lines itself
# --------------------------------------------------------------------------------------------
# Per row, Python's JSON and CSV serialisation costs more than everything else together, so on
# PostgreSQL one SQL expression renders each line of a JSONL or CSV file, equal byte for byte to what
# ``_plain``, ``_dumps``, ``csv_cell`` and ``csv.writer`` make of the row: ``to_json(text)`` escapes
# exactly like ``json.dumps(ensure_ascii=False)`` (short escapes for \b \f \n \r \t " \\, \u00xx
# for the other control characters), numbers and uuids print alike, timestamps go through to_char
# (ISO 8601 in UTC, microseconds only when there are some, as ``datetime.isoformat``), and jsonb's
# text form loses its ", " / ": " separators outside strings. One difference, in value-preserving
# direction: a non-integer number inside a jsonb value keeps the digits PostgreSQL stores (0.0000001,
# 1.50) where Python would print its float (1e-07, 1.5); both parse to the same number. Only the
# column types below qualify; a table with any other type (float, naive timestamp, json, arrays, ...)
# is rendered in Python.
#
# Except for long text. Escaping kilobytes of text is the bulk of PostgreSQL's work on a line
# (to_json walks it character by character; the CSV test is a regular expression), and PostgreSQL is
# the one busy core of an export; Python does the same job with a few ``bytes.replace`` / ``in`` calls
# at memchr speed, on the other core. So columns of unbounded text (Text, VARCHAR without a length:
# messages and answers) come raw, between the segments PostgreSQL renders, and ``_json_text`` /
# ``_csv_text`` quote them, byte for byte as ``json.dumps`` / ``csv.writer`` do.
PgKind = Literal["bool", "int", "numeric", "uuid", "text", "longtext", "timestamptz", "jsonb"]

# jsonb::text separates with ", " and ": "; a match is either a whole string (kept as it is) or one
# of those separators (kept without its space), which makes the compact form of json.dumps.
_JSONB_COMPACT_RE: Final = r'("(?:[^"\\]|\\.)*")|(,) |(:) '
_JSONB_COMPACT_TO: Final = r"\1\2\3"
_CSV_QUOTE_RE: Final = '[",\r\n]'  # csv.writer (QUOTE_MINIMAL, lineterminator CRLF) quotes these
_TS_SECONDS: Final = 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'
_TS_MICROS: Final = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'
_CONCAT_MAX_ARGS: Final = 90  # PostgreSQL functions take at most 100 arguments


def _pg_kind(typ: TypeEngine[Any], dialect: Dialect) -> PgKind | None:
    """How PostgreSQL can render a column exactly as the Python path does; None: it cannot."""
    if isinstance(typ, UTCDateTime):
        return "timestamptz"
    if isinstance(typ, TypeDecorator):
        cls = type(typ)
        if (
            cls.process_result_value is not TypeDecorator.process_result_value
            or cls.result_processor is not TypeDecorator.result_processor
        ):
            return None  # converts values in Python: only Python knows the result
        typ = typ.impl_instance
    if isinstance(typ, Boolean):
        return "bool"
    if isinstance(typ, Integer):
        return "int"
    if isinstance(typ, Numeric):
        return "numeric" if typ.asdecimal and not isinstance(typ, Float) else None
    if isinstance(typ, Uuid):
        return "uuid"
    if isinstance(typ, String):
        if isinstance(typ, Enum | CHAR):
            return None
        return "longtext" if typ.length is None else "text"
    if isinstance(typ, DateTime):
        return "timestamptz" if typ.timezone else None
    if isinstance(typ, JSON):
        return "jsonb" if isinstance(typ.dialect_impl(dialect), JSONB) else None
    return None


def _pg_concat(parts: Sequence[pgsql.Composable]) -> pgsql.Composable:
    from psycopg import sql

    if len(parts) > _CONCAT_MAX_ARGS:
        groups = [parts[i : i + _CONCAT_MAX_ARGS] for i in range(0, len(parts), _CONCAT_MAX_ARGS)]
        parts = [_pg_concat(g) for g in groups]
    return sql.SQL("concat({})").format(sql.SQL(", ").join(parts))


def _pg_values(
    kind: PgKind, col: pgsql.Composable, fmt: Literal["jsonl", "csv"]
) -> tuple[pgsql.Composable, Callable[[pgsql.Composable], pgsql.Composable]]:
    """One column: (its value as text or NULL, computed once per row in the inner query; how the
    outer query turns that value into the column's part of the line, never NULL)."""
    from psycopg import sql

    lit = sql.Literal
    if kind == "timestamptz":
        utc = sql.SQL("({} AT TIME ZONE 'UTC')").format(col)
        value: pgsql.Composable = sql.SQL(
            "CASE WHEN date_trunc('second', {u}) = {u} THEN to_char({u}, {s}) ELSE to_char({u}, {us}) END"
        ).format(u=utc, s=lit(_TS_SECONDS), us=lit(_TS_MICROS))
    elif kind == "bool":
        value = sql.SQL("CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END").format(c=col)
    elif kind == "text":
        value = sql.SQL("({} || '')").format(col)  # detoasted once, however often the outer query reads it
    elif kind == "jsonb":
        # json_strip_nulls() re-serialises JSON compactly (cheap) but drops object members that are
        # null: only when there can be none ("': null'" absent from the text); else a regular expression.
        text = sql.SQL("{}::text").format(col)
        value = sql.SQL(
            "CASE WHEN strpos({t}, ': null') = 0 THEN json_strip_nulls({t}::json)::text"
            " ELSE regexp_replace({t}, {re}, {to}, 'g') END"
        ).format(t=text, re=lit(_JSONB_COMPACT_RE), to=lit(_JSONB_COMPACT_TO))
        if fmt == "csv":  # csv_cell: a JSON string bare, JSON null as an empty cell
            value = sql.SQL(
                "CASE jsonb_typeof({c}) WHEN 'string' THEN {c} #>> '{{}}' WHEN 'null' THEN NULL ELSE {v} END"
            ).format(c=col, v=value)
    else:
        value = sql.SQL("{}::text").format(col)

    def part(v: pgsql.Composable) -> pgsql.Composable:
        if fmt == "csv":
            if kind in ("text", "jsonb"):
                return sql.SQL(
                    """CASE WHEN {v} ~ {re} THEN '"' || replace({v}, '"', '""') || '"' ELSE coalesce({v}, '') END"""
                ).format(v=v, re=lit(_CSV_QUOTE_RE))
            return sql.SQL("coalesce({}, '')").format(v)  # never holds a character that needs quotes
        if kind == "text":
            return sql.SQL("coalesce(to_json({})::text, 'null')").format(v)
        if kind in ("uuid", "numeric", "timestamptz"):  # JSON strings that need no escaping
            return sql.SQL("""coalesce('"' || {} || '"', 'null')""").format(v)
        return sql.SQL("coalesce({}, 'null')").format(v)

    return value, part


@dataclass(frozen=True)
class _LineQuery:
    """A SELECT whose rows are the lines of a JSONL or CSV file, in parts.

    Each row holds ``2 * raw + 1`` values: a segment of the line rendered by PostgreSQL (text, never
    NULL), then, ``raw`` times, the value of a long text column as stored (or NULL) and the segment that
    follows it. ``lines()`` puts a batch of rows together.
    """

    sql: pgsql.Composed
    fmt: Literal["jsonl", "csv"]
    raw: int

    def lines(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """The UTF-8 lines of ``rows`` (fetched as bytes), joined."""
        if not self.raw:
            return b"".join([row[0] for row in rows])
        quote = _json_text if self.fmt == "jsonl" else _csv_text
        null = b"null" if self.fmt == "jsonl" else b""
        columns: list[Iterable[bytes]] = list(zip(*rows, strict=True))
        for i in range(1, len(columns), 2):
            columns[i] = [null if value is None else quote(value) for value in columns[i]]
        return b"".join(chain.from_iterable(zip(*columns, strict=True)))


def _pg_line_query(t: OwnedTable, fmt: Literal["jsonl", "csv"], dialect: Dialect) -> _LineQuery | None:
    """SELECT the line of ``fmt`` of each row of ``t`` (owner ``%(owner_uid)s``), in export order.

    The inner query reads the user's rows in export order and computes each column's text once; the
    outer one assembles the segments of the lines around the long text values (``_LineQuery``). None
    when a column has a type that only Python renders exactly.
    """
    from psycopg import sql

    kinds = [_pg_kind(c.type, dialect) for c in t.clause.columns]
    names = t.column_names
    if not names or any(k is None for k in kinds) or (fmt == "csv" and len(names) < 2):
        return None  # (csv.writer quotes a lone empty cell; not worth a special case)
    inner: list[pgsql.Composable] = []
    outer: list[pgsql.Composable] = []  # segment, raw value, segment, ..., segment
    parts: list[pgsql.Composable] = []  # of the segment being built
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        assert kind is not None
        col = sql.SQL("t.{}").format(sql.Identifier(name))
        v = sql.SQL("s.{}").format(sql.Identifier(f"v{i}"))
        separator = (("{" if i == 0 else ",") + _dumps(name) + ":") if fmt == "jsonl" else ("," if i else "")
        if separator:
            parts.append(sql.Literal(separator))
        if kind == "longtext":
            inner.append(sql.SQL("{}::text AS {}").format(col, sql.Identifier(f"v{i}")))
            outer += [_pg_concat(parts) if parts else sql.SQL("''::text"), v]
            parts = []
        else:
            value, part = _pg_values(kind, col, fmt)
            inner.append(sql.SQL("{} AS {}").format(value, sql.Identifier(f"v{i}")))
            parts.append(part(v))
    parts.append(sql.Literal("}\n" if fmt == "jsonl" else "\r\n"))
    outer.append(_pg_concat(parts))
    keys = [sql.Identifier(f"k{i}") for i in range(len(t.order_by))]
    inner += [
        sql.SQL("t.{} AS {}").format(sql.Identifier(name), key) for name, key in zip(t.order_by, keys, strict=True)
    ]
    owner = sql.SQL(" OR ").join(
        sql.SQL("t.{} = %(owner_uid)s").format(sql.Identifier(name)) for name in t.owner_columns
    )
    query = sql.SQL(
        "SELECT {outer} FROM (SELECT {inner} FROM {table} AS t WHERE {owner} ORDER BY {inner_order} OFFSET 0)"
        " AS s ORDER BY {outer_order}"
    ).format(
        outer=sql.SQL(", ").join(outer),
        inner=sql.SQL(", ").join(inner),
        table=sql.Identifier(t.name),
        owner=owner,
        inner_order=sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(n)) for n in t.order_by),
        outer_order=sql.SQL(", ").join(sql.SQL("s.{}").format(k) for k in keys),
    )
    return _LineQuery(query, fmt, len(outer) // 2)


# The control characters that json.dumps escapes as \u00xx (it has short escapes for \b \t \n \f \r);
# the table marks them (maps them to NUL, which PostgreSQL text never holds).
_JSON_U_ESCAPED: Final = bytes(c for c in range(1, 0x20) if c not in b"\b\t\n\f\r")
_JSON_U_ESCAPED_MARK: Final = bytes.maketrans(_JSON_U_ESCAPED, bytes(len(_JSON_U_ESCAPED)))


def _json_text(value: bytes) -> bytes:
    """``_dumps(value.decode())`` as UTF-8, for UTF-8 text: a JSON string.

    Only ASCII bytes are looked at or replaced, and no byte of a multi-byte UTF-8 character is ASCII.
    """
    if value.translate(_JSON_U_ESCAPED_MARK) != value:
        return _dumps(value.decode("utf-8")).encode("utf-8")  # rare: json.dumps spells the \u00xx escapes
    if 92 in value or 34 in value or 10 in value or 13 in value or 9 in value or 8 in value or 12 in value:
        value = (  # the backslash first: no escape made here is escaped again
            value.replace(b"\\", b"\\\\")
            .replace(b'"', b'\\"')
            .replace(b"\n", b"\\n")
            .replace(b"\r", b"\\r")
            .replace(b"\t", b"\\t")
            .replace(b"\b", b"\\b")
            .replace(b"\f", b"\\f")
        )
    return b'"' + value + b'"'


def _csv_text(value: bytes) -> bytes:
    """A cell of UTF-8 text as ``csv.writer`` writes it (QUOTE_MINIMAL, lineterminator CRLF)."""
    if 34 in value:  # '"'
        return b'"' + value.replace(b'"', b'""') + b'"'
    if 44 in value or 10 in value or 13 in value:  # ',' '\n' '\r'
        return b'"' + value + b'"'
    return value


def _psycopg_connection(conn: Connection) -> psycopg.Connection[Any] | None:
    """The psycopg connection under ``conn`` when the database can render lines (UTF-8 PostgreSQL)."""
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return None
    import psycopg

    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection) or raw.info.encoding != "utf-8":
        return None
    return raw


# --------------------------------------------------------------------------------------------
# the ZIP stream
# --------------------------------------------------------------------------------------------
class _Sink:
    """A write-only, non-seekable target for ``zipfile`` that hands its bytes out on demand."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.pending = 0
        self.total = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self.pending += len(data)
        self.total += len(data)
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


def _use_isal(fh: IO[bytes]) -> None:
    """Let ISA-L deflate the member ``fh`` (just opened by ``ZipFile.open(name, "w")``, nothing written).

    zipfile compresses through the ``compressobj`` it keeps in ``_compressor`` (a raw deflate stream,
    wbits -15, with zipfile's own CRC32 and headers); ISA-L's ``compressobj`` has the same interface
    and makes the same format (method 8, deflate), so the archive stays a standard ZIP. Where either
    is missing (no isal, a future zipfile without that attribute) zlib does the work, only slower.
    """
    if isal_zlib is not None and getattr(fh, "_compressor", None) is not None:
        fh._compressor = isal_zlib.compressobj(ISAL_LEVEL, isal_zlib.DEFLATED, -15)  # type: ignore[attr-defined]


class _Writer:
    """One archive member being written: counts, hashes and compresses what it is given."""

    def __init__(self, zf: zipfile.ZipFile, name: str, *, large: bool) -> None:
        self.name = name
        self.stats = _FileStats()
        self._fh: IO[bytes] = zf.open(name, "w", force_zip64=large)
        _use_isal(self._fh)

    def write(self, text: str, rows: int = 0) -> None:
        self.write_bytes(text.encode("utf-8"), rows)

    def write_bytes(self, data: bytes, rows: int = 0) -> None:
        """UTF-8 text; thread-safe for one writer at a time (ISA-L, zlib and hashlib release the GIL)."""
        self.stats.sha256.update(data)
        self.stats.size += len(data)
        self.stats.rows += rows
        self._fh.write(data)

    def close(self) -> None:
        self._fh.close()


class _Export:
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
        self.pg = _psycopg_connection(conn)  # None: every row is rendered in Python
        self._worker: ThreadPoolExecutor | None = None

    # -- helpers ---------------------------------------------------------------------------
    def _ready(self) -> Iterator[bytes]:
        if self.sink.pending >= CHUNK_BYTES:
            yield self.sink.take()

    def _tick(self, rows: int) -> None:
        self.done += rows
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total)

    def _open(self, name: str, tables: Sequence[str], *, large: bool = False) -> _Writer:
        for t in tables:
            self.table_files.setdefault(t, []).append(name)
        return _Writer(self.zf, name, large=large)

    def _close(self, writer: _Writer) -> None:
        writer.close()
        self.files[writer.name] = writer.stats

    def _batches(self, t: OwnedTable) -> Iterator[list[dict[str, Any]]]:
        stmt = (
            select(*t.clause.columns)
            .where(t.owned_by(self.user_id))
            .order_by(*(t.clause.c[name] for name in t.order_by))
        )
        names = t.column_names
        result = self.conn.execute(stmt, execution_options={"yield_per": BATCH_ROWS})
        for part in result.partitions():
            yield [dict(zip(names, [v if type(v) in _SIMPLE else _plain(v) for v in row], strict=True)) for row in part]

    def _count(self, t: OwnedTable) -> int:
        return _count(self.conn, t, self.user_id)

    def _line_query(self, t: OwnedTable, fmt: Literal["jsonl", "csv"]) -> _LineQuery | None:
        return None if self.pg is None else _pg_line_query(t, fmt, self.conn.dialect)

    def _line_batches(self, query: _LineQuery) -> Generator[list[tuple[Any, ...]], None, None]:
        """The rows of a ``_pg_line_query`` in batches of ``BATCH_ROWS``, every text value as UTF-8 bytes.

        Streamed (in chunks of rows where libpq can): PostgreSQL goes on rendering rows while the last
        ones are read, without the round trip per batch of a server-side cursor; the socket bounds what
        is in flight. In the session's transaction: the same snapshot, role and RLS identity.
        """
        from psycopg import capabilities
        from psycopg.types.string import ByteaBinaryLoader

        assert self.pg is not None
        chunk = BATCH_ROWS if capabilities.has_stream_chunked() else 1
        with self.pg.cursor(binary=True) as cur:
            cur.adapters.register_loader("text", ByteaBinaryLoader)  # raw UTF-8, no str round trip
            rows = cur.stream(query.sql, {"owner_uid": self.user_id}, size=chunk)
            assert isinstance(rows, Generator)
            try:
                while batch := list(islice(rows, BATCH_ROWS)):
                    yield batch
            finally:
                rows.close()  # stopped early: psycopg cancels the query and drains the connection

    def _pipelined(self, w: _Writer, query: _LineQuery) -> Iterator[bytes]:
        """Write the lines of ``query`` into ``w``. The worker puts batches together, hashes and compresses
        them while the next ones are read (``PIPELINE_BATCHES`` in flight) and alone touches the
        sink meanwhile: each of its jobs hands back the compressed bytes ready by then, in order."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="advisor-export")
        batches = self._line_batches(query)
        pending: deque[Future[bytes]] = deque()
        try:
            for rows in batches:
                if len(pending) >= PIPELINE_BATCHES and (ready := pending.popleft().result()):
                    yield ready
                pending.append(self._worker.submit(self._write_lines, w, query, rows))
                self._tick(len(rows))
            while pending:
                if ready := pending.popleft().result():
                    yield ready
        finally:
            batches.close()
            if pending:  # closed early or failed: let the worker finish with the writer
                wait_futures(pending)

    def _write_lines(self, w: _Writer, query: _LineQuery, rows: Sequence[Sequence[Any]]) -> bytes:
        w.write_bytes(query.lines(rows), len(rows))
        return self.sink.take() if self.sink.pending >= CHUNK_BYTES else b""

    # -- members ---------------------------------------------------------------------------
    def _profile(self, tables: dict[str, OwnedTable]) -> Iterator[bytes]:
        users = [r for batch in self._batches(tables["users"]) for r in batch]
        if len(users) != 1:
            raise NotFound("no such user")
        profiles = [r for batch in self._batches(tables["user_profiles"]) for r in batch]
        w = self._open("profile.json", _PROFILE_TABLES)
        doc = {"user": users[0], "profile": profiles[0] if profiles else None}
        w.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", rows=len(users) + len(profiles))
        self._close(w)
        self.row_counts["users"] = len(users)
        self.row_counts["user_profiles"] = len(profiles)
        self._tick(len(users) + len(profiles))
        yield from self._ready()

    def _json_array(self, t: OwnedTable, name: str) -> Iterator[bytes]:
        w = self._open(name, [t.name])
        w.write("[")
        first = True
        for batch in self._batches(t):
            parts = []
            for row in batch:
                parts.append(("\n  " if first else ",\n  ") + _dumps(row))
                first = False
            w.write("".join(parts), rows=len(batch))
            self._tick(len(batch))
            yield from self._ready()
        w.write("\n]\n" if not first else "]\n")
        self._close(w)
        self.row_counts[t.name] = w.stats.rows
        yield from self._ready()

    def _jsonl(self, t: OwnedTable, name: str) -> Iterator[bytes]:
        w = self._open(name, [t.name], large=True)
        query = self._line_query(t, "jsonl")
        if query is not None:
            yield from self._pipelined(w, query)
        else:
            for batch in self._batches(t):
                w.write("".join(_dumps(row) + "\n" for row in batch), rows=len(batch))
                self._tick(len(batch))
                yield from self._ready()
        self._close(w)
        self.row_counts[t.name] = w.stats.rows
        yield from self._ready()

    def _csv(self, t: OwnedTable, name: str) -> Iterator[bytes]:
        w = self._open(name, [t.name], large=True)
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\r\n")
        out.writerow(t.column_names)
        w.write(buf.getvalue())
        query = self._line_query(t, "csv")
        if query is not None:
            yield from self._pipelined(w, query)
        else:
            for batch in self._batches(t):
                buf.seek(0)
                buf.truncate(0)
                out.writerows([csv_cell(v) for v in row.values()] for row in batch)
                w.write(buf.getvalue(), rows=len(batch))
                self._tick(len(batch))
                yield from self._ready()
        self._close(w)
        yield from self._ready()

    def _text(self, name: str, text: str) -> Iterator[bytes]:
        w = self._open(name, [])
        w.write(text)
        self._close(w)
        yield from self._ready()

    # -- the archive -----------------------------------------------------------------------
    def run(self) -> Iterator[bytes]:
        try:
            yield from self._archive()
        finally:
            if self._worker is not None:
                self._worker.shutdown(wait=True)

    def _archive(self) -> Iterator[bytes]:
        catalogue = user_data_tables(self.conn)
        tables = {t.name: t for t in catalogue}
        missing = [n for n in (*_PROFILE_TABLES, *_JSON_ARRAY_FILES, _RUNS_TABLE) if n not in tables]
        if missing:
            raise RuntimeError(f"the catalogue lacks {', '.join(missing)}")
        revision = self.conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        exported_at = utcnow()
        counts = {t.name: self._count(t) for t in catalogue}
        self.total = sum(counts.values()) + counts[_RUNS_TABLE]  # runs are written twice
        self._tick(0)

        yield from self._profile(tables)
        for name, file_name in _JSON_ARRAY_FILES.items():
            yield from self._json_array(tables[name], file_name)
        yield from self._jsonl(tables[_RUNS_TABLE], "agent_runs.jsonl")
        yield from self._csv(tables[_RUNS_TABLE], "agent_runs.csv")
        known = {*_PROFILE_TABLES, *_JSON_ARRAY_FILES, _RUNS_TABLE}
        extras = [t for t in catalogue if t.name not in known]
        for t in extras:
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
        w = self._open("manifest.json", [])
        w.write(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
        w.close()
        self.zf.close()
        yield self.sink.take()


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
    finishing.wait_user(user_id)  # an answer just streamed is in the export with its usage and cost
    with user_session(user_id, engine=engine) as session:
        export = _Export(session.connection(), user_id, progress)
        yield from export.run()


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
    return f"advisor-export-{(today or utcnow().date()).isoformat()}.zip"


# --------------------------------------------------------------------------------------------
# README.txt
# --------------------------------------------------------------------------------------------
FIELD_DOCS: Final[dict[str, dict[str, str]]] = {
    "users": {
        "id": "your account id (a UUID); every other file refers to you by it as user_id",
        "email": "your sign-in email address (stored lower-cased)",
        "auth_provider": "how you sign in: local (email + password) or oidc (single sign-on)",
        "oidc_subject": "your identifier at the single sign-on provider (empty for local accounts)",
        "is_admin": "whether you are an administrator of this Advisor installation",
        "created_at": "when your account was created (UTC, ISO 8601)",
        "quota_tokens_per_day": "a personal daily token quota set by an administrator (empty: the default)",
        "quota_cost_per_month_usd": "a personal monthly cost quota in USD (empty: the default)",
    },
    "user_profiles": {
        "user_id": "your account id",
        "role": "the role you gave (e.g. CTO)",
        "stack": "the technologies you listed (a JSON list)",
        "vertical": "your industry vertical",
        "updated_at": "when you last changed the profile (UTC)",
    },
    "vibe_configs": {
        "id": "the vibe's id",
        "user_id": "your account id",
        "name": "the name you gave the vibe",
        "playfulness": "slider 0-10",
        "revenue_focus": "slider 0-10",
        "technical_depth": "slider 0-10",
        "brevity": "slider 0-10",
        "formality": "slider 0-10",
        "is_active": "whether this is the vibe used for new answers",
        "updated_at": "when the vibe was last changed (UTC)",
    },
    "conversations": {
        "id": "the conversation's id; agent runs refer to it as conversation_id",
        "user_id": "your account id",
        "title": "the conversation's title",
        "agent": "the advisor mode chosen for it",
        "created_at": "when it was started (UTC)",
    },
    "agent_runs": {
        "id": "the run's id (one question and its answer)",
        "user_id": "your account id",
        "conversation_id": "the conversation this turn belongs to",
        "agent": "the advisor mode that answered",
        "created_at": "when you sent the message (UTC)",
        "user_message": "the message you sent, exactly as stored",
        "output": "the answer shown to you (partial if the run was interrupted)",
        "status": "pending, ok, error or interrupted",
        "provider": "the LLM provider that answered (openai, anthropic, demo)",
        "model": "the model that answered",
        "fallback_from": "the provider/model tried first when a fallback happened",
        "input_tokens": "tokens sent to the model",
        "output_tokens": "tokens the model produced",
        "cached_input_tokens": "input tokens served from the provider's prompt cache",
        "cache_write_tokens": "input tokens written to the provider's prompt cache",
        "cost_usd": "the computed cost in USD, a decimal string (empty when the model's price is unknown)",
        "ttft_ms": "milliseconds until the first token arrived",
        "latency_ms": "milliseconds until the answer was complete",
        "prompt_sha256": "sha256 of the system prompt used (traces the answer to its prompt)",
        "atom_versions": "the prompt atoms used, as a JSON list of [id, version]",
        "request_id": "the reference shown with errors and written in our logs",
        "error_code": "the error category when the run failed",
    },
    "usage_counters": {
        "user_id": "your account id",
        "day": "a UTC day (YYYY-MM-DD) on which you sent messages",
        "tokens": "tokens used by the runs of that day (input, cached input, cache writes and output); "
        "your daily token quota is checked against it",
        "cost_usd": "cost in USD of the runs of that day, a decimal string; your monthly cost quota is "
        "checked against the sum of the month's days",
    },
    "signin_addresses": {
        "user_id": "your account id",
        "address_hash": "a keyed one-way hash of a network address you signed in from (the address "
        "itself is not stored); sign-in attempts from it are not refused when others guess at your "
        "account from elsewhere",
        "last_seen": "your last successful sign-in from that address (UTC); forgotten after "
        "ADVISOR_SIGNIN_KNOWN_ADDRESS_DAYS days",
    },
}

_README_HEAD = """\
Advisor — export of your data
=============================

This archive holds every row that Advisor stores about you, read in one consistent snapshot of the
database at the time given in manifest.json ("exported_at", UTC). Text files are UTF-8. Timestamps
are UTC in ISO 8601. Ids are UUIDs. Decimal amounts are decimal strings (exact, never rounded).

Left out on purpose: users.password_hash, the one-way hash of your password (a secret used to check
your password, not information about you). Nothing else is left out.

Files
-----
profile.json        your account row ("user", from the table users) and your profile ("profile",
                    from user_profiles; null if you never filled it in)
vibe_configs.json   your vibes (output-style presets), a JSON array, one object per vibe
conversations.json  your conversations, a JSON array, one object per conversation
agent_runs.jsonl    every chat turn: your message, the answer and how it was produced; JSON Lines
                    (one JSON object per line), oldest first
agent_runs.csv      the same rows as agent_runs.jsonl as a spreadsheet: CSV (RFC 4180, comma separated,
                    double-quote quoting, CRLF line ends, first line = column names, no byte order
                    mark). Empty cell = no value (null) or empty text (agent_runs.jsonl tells the two
                    apart); true/false for yes/no; JSON lists as JSON text.
extra/<table>.jsonl any other table holding rows of yours (JSON Lines), e.g. extra/usage_counters.jsonl:
                    your usage per UTC day, kept for your quotas, and extra/signin_addresses.jsonl:
                    hashes of the addresses you signed in from
README.txt          this file
manifest.json       format and schema version, export time, number of rows per table, and for each
                    file its size in bytes, its number of rows and its SHA-256 (to check the archive
                    is complete: e.g. `sha256sum agent_runs.csv`)

Large files are stored with ZIP64 extensions; any current unzip tool reads them.

Fields
------
"""


def readme_text(catalogue: Iterable[OwnedTable]) -> str:
    """README.txt: every file, and every field of every exported table."""
    lines = [_README_HEAD]
    for t in catalogue:
        docs = FIELD_DOCS.get(t.name, {})
        lines.append(f"{t.name}\n")
        for name in t.column_names:
            lines.append(f"  {name}: {docs.get(name, '(no description yet)')}\n")
        lines.append("\n")
    return "".join(lines)


# --------------------------------------------------------------------------------------------
# deletion
# --------------------------------------------------------------------------------------------
class LastAdmin(Exception):
    """The only admin cannot delete their account while other accounts exist (none could ever be
    made admin again); nothing was deleted."""

    message = "You are the only admin. Make another user an admin on the Admin page first; nothing was deleted."


@dataclass(frozen=True)
class DeletionReceipt:
    """What ``delete_user`` removed; holds no personal data (the hash is keyed and one-way)."""

    record_id: uuid.UUID
    subject_hash: str
    deleted_at: datetime
    row_counts: dict[str, int]
    limits_cleared: bool

    @property
    def total_rows(self) -> int:
        return sum(self.row_counts.values())


def subject_hash(user_id: uuid.UUID) -> str:
    """HMAC-SHA256 of the user id keyed with ``settings.deletion_salt`` (hex, 64 characters)."""
    return secret_hmac(str(user_id))


def delete_user(
    *,
    user_id: uuid.UUID,
    engine: Engine | None = None,
    on_table_deleted: Callable[[str, int], None] | None = None,
) -> DeletionReceipt:
    """Delete every row carrying ``user_id``, then the user, in one transaction; record it without PII.

    ``on_table_deleted(table, rows)`` is called after each table is emptied, inside the transaction
    (an exception from it rolls everything back). Raises ``NotFound`` when the user does not exist.
    """
    finishing.wait_user(user_id)  # no write of an answered run comes after the deletion
    with user_session(user_id, engine=engine) as session:
        conn = session.connection()
        catalogue = user_data_tables(conn)
        root = catalogue[0]
        email = conn.execute(select(root.clause.c.email).where(root.owned_by(user_id))).scalar_one_or_none()
        if email is None:
            raise NotFound("no such user")
        if _sole_admin_among_others(conn, root.clause, user_id):
            raise LastAdmin(LastAdmin.message)
        system_deletes = _rows_only_the_system_deletes(conn, catalogue)
        counts: dict[str, int] = {}
        for t in reversed(catalogue):  # children first; users last
            by_system = t.name in system_deletes
            if by_system:
                set_local_role(conn, SYSTEM_ROLE)
            n = conn.execute(t.clause.delete().where(t.owned_by(user_id))).rowcount
            if by_system:
                set_local_role(conn, APP_ROLE)
            counts[t.name] = n
            if on_table_deleted is not None:
                on_table_deleted(t.name, n)
        if counts[ROOT_TABLE] != 1:
            raise NotFound("no such user")
        left = {t.name: n for t in catalogue if (n := _count(conn, t, user_id))}
        if left:  # e.g. rows hidden from this identity by row-level security
            raise RuntimeError(f"rows of the user are left in {', '.join(sorted(left))}")
        record = DeletionRecord(subject_hash=subject_hash(user_id), deleted_at=utcnow(), row_counts=counts)
        if conn.dialect.name == "postgresql":
            set_local_role(conn, SYSTEM_ROLE)  # deletion records are written by the system role only
        conn.execute(
            DeletionRecord.__table__.insert().values(  # type: ignore[attr-defined]
                id=record.id,
                subject_hash=record.subject_hash,
                deleted_at=record.deleted_at,
                row_counts=record.row_counts,
            )
        )
    log.info("user deleted: subject %s, %d rows", record.subject_hash[:12], sum(counts.values()))
    limits_cleared = _clear_user_limits(user_id=user_id, email=email)
    return DeletionReceipt(
        record_id=record.id,
        subject_hash=record.subject_hash,
        deleted_at=record.deleted_at,
        row_counts=counts,
        limits_cleared=limits_cleared,
    )


def _rows_only_the_system_deletes(conn: Connection, catalogue: Sequence[OwnedTable]) -> frozenset[str]:
    """PostgreSQL: the user tables ``advisor_app`` may not delete from (usage counters, sign-in
    records: a user session cannot erase them, migration 0010); the deletion removes the user's rows
    there as ``advisor_system``, everywhere else in the user's own session. Empty on SQLite."""
    if conn.dialect.name != "postgresql":
        return frozenset()
    may_delete = conn.execute(
        select(*(func.has_table_privilege(APP_ROLE, t.name, "DELETE") for t in catalogue))
    ).one()
    return frozenset(t.name for t, allowed in zip(catalogue, may_delete, strict=True) if not allowed)


def _sole_admin_among_others(conn: Connection, users: TableClause, user_id: uuid.UUID) -> bool:
    """Is ``user_id`` the only admin while other accounts exist? Reads every account, so on
    PostgreSQL it looks as ``advisor_system`` for a moment (then back to ``advisor_app``), and it
    locks the admin rows: two admins deleting themselves at once cannot both pass."""
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        set_local_role(conn, SYSTEM_ROLE)
    try:
        admins = select(users.c.id).where(users.c.is_admin.is_(True))
        admin_ids = set(conn.execute(admins.with_for_update() if postgres else admins).scalars())
        if admin_ids != {user_id}:
            return False
        others = conn.execute(select(func.count()).select_from(users).where(users.c.id != user_id)).scalar_one()
        return int(others) > 0
    finally:
        if postgres:
            set_local_role(conn, APP_ROLE)


def _count(conn: Connection, t: OwnedTable, user_id: uuid.UUID) -> int:
    stmt = select(func.count()).select_from(t.clause).where(t.owned_by(user_id))
    return int(conn.execute(stmt).scalar_one())


def _clear_user_limits(*, user_id: uuid.UUID, email: str) -> bool:
    """Forget the user's rate-limit keys (after the commit: a failure here cannot undo the deletion)."""
    try:
        limits = importlib.import_module("core.limits")
    except ImportError:
        return False
    clear = getattr(limits, "clear_user_limits", None)
    if clear is None:
        return False
    try:
        clear(user_id=user_id, email=email)
    except Exception:
        log.exception("could not clear the rate-limit keys of a deleted user")
        return False
    return True
