"""How stored values are written in the export: JSON values per column type, CSV cells (C17)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Float, Integer, LargeBinary, Numeric, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import AutoString

from core.export_values import FORMULA_START, csv_cell, json_converter
from models.types import UTCDateTime


@pytest.mark.parametrize("text", ["=1+1", "+SUM(1)", "-2", "@x", "\tindent", "\rreturn", '=HYPERLINK("h","x")'])
def test_text_a_spreadsheet_would_run_gets_an_apostrophe(text: str) -> None:
    assert text.startswith(FORMULA_START)
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", ["", "plain", "1+1", " =1", "a=b", "'quoted", "é=", "\n=newline first"])
def test_other_text_is_written_as_it_is(text: str) -> None:
    assert csv_cell(text) == text


def test_cells_of_other_values() -> None:
    assert csv_cell(None) == ""
    assert csv_cell(True) == "true" and csv_cell(False) == "false"
    assert csv_cell(-2) == "-2" and csv_cell(1.5) == "1.5"  # numbers are numbers, not formulas
    assert csv_cell([["base", 1], ["tone", 2]]) == '[["base",1],["tone",2]]'
    assert csv_cell({"a": "=x"}) == '{"a":"=x"}'


def test_a_neutralised_cell_survives_csv_quoting() -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow([csv_cell('=cmd|" /C calc"!A0'), csv_cell("ok")])
    assert next(csv.reader(io.StringIO(buf.getvalue(), newline=""))) == ["'=cmd|\" /C calc\"!A0", "ok"]


def test_json_values_by_column_type() -> None:
    uid = uuid.uuid4()
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))

    def as_json(typ, value):  # type: ignore[no-untyped-def]
        convert = json_converter(typ)
        return value if convert is None else convert(value)

    assert as_json(Uuid(), uid) == str(uid)
    assert as_json(UTCDateTime(), at) == "2026-01-02T01:04:05.000006+00:00"
    assert as_json(DateTime(), datetime(2026, 1, 2)) == "2026-01-02T00:00:00"  # naive stays naive
    assert as_json(Date(), date(2026, 1, 2)) == "2026-01-02"
    assert as_json(Numeric(14, 8), Decimal("0.00000001")) == "0.00000001"  # never 1E-8
    assert as_json(LargeBinary(), b"\x00\xff") == "00ff"
    for typ in (Text(), AutoString(), Integer(), BigInteger(), Boolean(), Float(), JSON(), JSONB()):
        assert json_converter(typ) is None, typ  # already JSON values
    assert as_json(JSON(), [["base", 1]]) == [["base", 1]]
    assert as_json(UTCDateTime(), datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00+00:00"
