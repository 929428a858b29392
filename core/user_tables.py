"""The tables that hold a user's rows, found in the live database catalogue (C17, C18).

Export (``core.export``) and deletion (``core.deletion``) both work from this catalogue, not from a
hand-written list: ``users`` (owner column ``id``) and every table with a ``user_id`` column or a
foreign key to ``users.id``. A table added by a future migration is therefore exported and deleted
without a change to either. Known tables are read with their model column types, so values come
back as uuids, UTC datetimes, decimals and JSON.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, MetaData, Table, Uuid, bindparam, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import TableClause, column, table
from sqlalchemy.types import TypeEngine

from models import metadata as model_metadata

__all__ = ["EXCLUDED_COLUMNS", "ROOT_TABLE", "OwnedTable", "count_owned_rows", "user_data_tables"]

ROOT_TABLE: Final = "users"
OWNER_COLUMN: Final = "user_id"
# Values we hold but never hand out: a password hash is a secret, not information about the person.
EXCLUDED_COLUMNS: Final[dict[str, frozenset[str]]] = {"users": frozenset({"password_hash"})}


@dataclass(frozen=True)
class OwnedTable:
    """A table holding a user's rows: its owner columns, its columns (typed for reading) and the order
    its rows are read in (creation time, then primary key)."""

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
    Excluded columns (``EXCLUDED_COLUMNS``) and generated columns (PostgreSQL's search vectors,
    derived from the text the export already holds) are left out of ``clause``. SQLite's FTS5 search
    tables hold no owner column and no text of their own (external content): they are not listed,
    and triggers remove their entries with the rows they index.
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
            if c.name in excluded or c.computed is not None:  # a generated column is derived, not data
                continue
            typ: TypeEngine[Any] = model.c[c.name].type if model is not None and c.name in model.c else c.type
            cols.append(column(c.name, typ))
        pk = [c.name for c in t.primary_key.columns]
        order = (["created_at"] if "created_at" in t.c and "created_at" not in pk else []) + pk
        out.append(OwnedTable(t.name, owners, table(t.name, *cols), tuple(order or owners)))
    if not out or out[0].name != ROOT_TABLE:
        raise RuntimeError("the catalogue has no users table")
    return out


def count_owned_rows(conn: Connection, t: OwnedTable, user_id: uuid.UUID) -> int:
    """How many rows of ``t`` belong to ``user_id``."""
    stmt = select(func.count()).select_from(t.clause).where(t.owned_by(user_id))
    return int(conn.execute(stmt).scalar_one())
