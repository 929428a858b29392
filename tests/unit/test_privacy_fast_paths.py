"""The export's fast paths: long text quoted in Python exactly as json.dumps / csv.writer do, and
members deflated by ISA-L into a standard ZIP (C17)."""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from isal import isal_zlib

from core.privacy import _csv_text, _json_text, _LineQuery, _Sink, _Writer

# Text as PostgreSQL stores it: any character but NUL and lone surrogates; weighted towards the
# characters that need escaping or quoting.
SPECIAL = [chr(c) for c in range(1, 0x20)] + ['"', "\\", ",", "/", "\x7f", "\u2028", "\u2029", "é", "🚀", " "]
text = st.text(
    alphabet=st.one_of(
        st.sampled_from(SPECIAL),
        st.characters(codec="utf-8", exclude_characters="\x00"),
    ),
    max_size=200,
)


def _csv_row(cells: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(cells)
    return buf.getvalue()


@settings(max_examples=500, deadline=None)
@given(text)
@example("")
@example('plain "quoted" back\\slash\n\r\t\b\f\x01\x1f\x7f é 🚀 \u2028')
@example("no special characters at all")
def test_json_text_is_json_dumps(value: str) -> None:
    assert _json_text(value.encode("utf-8")) == json.dumps(value, ensure_ascii=False).encode("utf-8")


@settings(max_examples=500, deadline=None)
@given(text)
@example("")
@example('a "quote"')
@example("comma, here")
@example("line\nbreak")
@example("carriage\rreturn")
@example("tab\tand \\ and 🚀")
def test_csv_text_is_a_csv_writer_cell(value: str) -> None:
    # a cell between two others: csv.writer quotes an empty cell only when it is alone on its row
    expected = _csv_row(["x", value, "y"]).encode("utf-8")
    assert b"x," + _csv_text(value.encode("utf-8")) + b",y\r\n" == expected


def test_lines_put_segments_and_quoted_long_text_together() -> None:
    rows = [(b'{"a":', b'x "y"', b',"b":', None, b"}\n"), (b'{"a":', b"", b',"b":', b"\\", b"}\n")]
    assert _LineQuery(None, "jsonl", 2).lines(rows) == b'{"a":"x \\"y\\"","b":null}\n{"a":"","b":"\\\\"}\n'  # type: ignore[arg-type]
    rows = [(b"1,", b"a,b", b",", None, b"\r\n")]
    assert _LineQuery(None, "csv", 2).lines(rows) == b'1,"a,b",\r\n'  # type: ignore[arg-type]


def test_members_are_deflated_by_isal_into_a_standard_zip(tmp_path: Path) -> None:
    rng = random.Random(7)
    words = ["latency", "budget", "rollout", "émigré", "🚀", "a,b", '"q"', "\n"]
    text = " ".join(rng.choice(words) for _ in range(400_000)).encode()
    sink = _Sink()
    zf = zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
    w = _Writer(zf, "big.txt", large=True)
    assert isinstance(w._fh._compressor, isal_zlib.Compress)  # type: ignore[attr-defined]
    for i in range(0, len(text), 100_000):
        w.write_bytes(text[i : i + 100_000])
    w.close()
    zf.close()
    data = sink.take()
    assert len(data) < len(text) / 2
    with zipfile.ZipFile(io.BytesIO(data)) as back:
        info = back.getinfo("big.txt")
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert back.testzip() is None  # CRC32 of every member checks out
        assert back.read("big.txt") == text
    if shutil.which("unzip") is None:
        pytest.skip("no unzip on this machine")
    archive = tmp_path / "export.zip"
    archive.write_bytes(data)
    out = subprocess.run(["unzip", "-p", str(archive), "big.txt"], capture_output=True, check=True)
    assert out.stdout == text
