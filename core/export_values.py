"""How stored values are written in the export: as JSON values, and as CSV cells safe to open in a
spreadsheet (C17)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import JSON, Boolean, DateTime, Enum, Float, Integer, Numeric, String, Uuid
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = ["FORMULA_START", "JSON_ENCODER", "csv_cell", "json_converter"]

# A spreadsheet reads a cell that starts with one of these as a formula (OWASP, CSV injection).
FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")
JSON_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _iso_utc(value: datetime) -> str:
    return (value if value.tzinfo is None else value.astimezone(UTC)).isoformat()


def _decimal_text(value: Decimal) -> str:
    return format(value, "f")  # never "1E-8"


def _plain(value: Any) -> Any:
    """Any value as it appears in JSON: uuids, datetimes and decimals as strings, JSON as is."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return _iso_utc(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def json_converter(typ: TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """How the values of a column of type ``typ`` become JSON values; None when they already are (text,
    numbers, booleans, JSON). ``_plain`` for the types it does not know, and for a type decorator that
    makes its own Python values."""
    if isinstance(typ, TypeDecorator):
        cls = type(typ)
        if (
            cls.process_result_value is not TypeDecorator.process_result_value
            or cls.result_processor is not TypeDecorator.result_processor
        ):
            return _plain
        typ = typ.impl_instance
    if isinstance(typ, Enum):
        return _plain  # may read as Python enum members
    if isinstance(typ, Float):
        return None
    if isinstance(typ, Numeric):
        return _decimal_text if typ.asdecimal else None
    if isinstance(typ, JSON | String | Integer | Boolean):
        return None
    if isinstance(typ, Uuid):
        return str if typ.as_uuid else None
    if isinstance(typ, DateTime):
        return _iso_utc
    return _plain


def csv_cell(value: Any) -> str:
    """How a JSON value of ``agent_runs.jsonl`` is written in ``agent_runs.csv`` (README.txt).

    Text that starts with ``= + - @``, a tab or a carriage return gets a ``'`` in front, so that a
    spreadsheet shows it instead of running it as a formula (OWASP's advice on CSV injection).
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_START) else value
    if isinstance(value, list | dict):
        return JSON_ENCODER.encode(value)
    return str(value)
