"""Delete everything held about a user, in one transaction, and keep a record without PII (C18).

``delete_user()`` removes, in one ``user_session(user_id)`` transaction, every row that carries the
user id in every table of the catalogue (``core.user_tables``), children before parents (foreign-key
order), then the ``users`` row; checks that nothing is left; and writes a ``deletion_records`` row
whose only link to the person is an HMAC-SHA256 of the id keyed with ``settings.deletion_salt``. On
PostgreSQL the rows a user session may not erase (usage counters, sign-in records) are deleted, and
the deletion record written, as ``advisor_system`` within that transaction. Any error rolls all of it
back. After the commit it clears the user's rate-limit keys (``core.rate_limits.clear_user_limits``); the
page clears Streamlit's caches.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.expression import TableClause

from core.db import APP_ROLE, SYSTEM_ROLE, NotFound, set_local_role, user_session
from core.rate_limits import clear_user_limits
from core.settings import secret_hmac
from core.user_tables import ROOT_TABLE, OwnedTable, count_owned_rows, user_data_tables
from models import DeletionRecord
from models.types import utcnow

__all__ = ["DeletionReceipt", "LastAdmin", "delete_user", "subject_hash"]

log = logging.getLogger("advisor.deletion")


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
    (an exception from it rolls everything back). Raises ``NotFound`` when the user does not exist,
    ``LastAdmin`` when the user is the only admin and other accounts exist.
    """
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
        left = {t.name: n for t in catalogue if (n := count_owned_rows(conn, t, user_id))}
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


def _clear_user_limits(*, user_id: uuid.UUID, email: str) -> bool:
    """Forget the user's rate-limit keys (after the commit: a failure here cannot undo the deletion)."""
    try:
        clear_user_limits(user_id=user_id, email=email)
    except Exception:
        log.exception("could not clear the rate-limit keys of a deleted user")
        return False
    return True
