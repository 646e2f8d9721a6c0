"""Row fuzzing (issue 18): hypothesis-drawn rows round-trip exactly through every format.

Each example builds a real DuckDB warehouse table from drawn rows: text holding NUL,
CR/LF, quotes, the delimiter, backslashes, the CSV null marker, non-BMP characters and
1 MB strings; NaN, ±Infinity, -0.0 and other floats; dates and timestamps in years 1 and
9999; NULLs everywhere, NULL time and sub-partition values, and sub-partition values
such as ``../../x``, ``a/b``, ``.``, ``..``, a newline, ``_null_`` and values longer
than 255 bytes. ``dpexport.run`` exports it as Parquet (SNAPPY streamed, ZSTD written
by DuckDB), JSONL (NONE, GZIP) and CSV (NONE, ZSTD), and the test reads the files back
with the readers users run:

- Parquet: ``pyarrow.parquet`` and DuckDB's ``read_parquet``;
- JSONL: Python's ``json`` (every column), pyarrow's JSON reader (the text columns:
  it cannot read ``"NaN"`` in a number column, nor dates) and DuckDB's ``read_json``
  with the columns' types;
- CSV: DuckDB's ``read_csv`` with ``escape='\\'`` (CONTRACT §8) and pyarrow's CSV
  reader with the same dialect (a 1 MB row needs a ``block_size`` above it).

Every reader must give back exactly the rows put in (floats bit for bit, -0.0 too);
every file lands inside the local root, under its table's destination or a reserved
prefix; every folder holds rows of one partition value, its name one path component
of at most 255 bytes; ``verify`` passes.

Lone surrogates (``'\\ud800'`` in a Python ``str``) cannot reach an export: DuckDB,
Arrow and BigQuery hold only valid UTF-8, and DuckDB refuses such a value when it is
inserted, naming it (:func:`test_a_lone_surrogate_is_refused_by_the_warehouse`).

The examples are bounded for CI; ``DPEXPORT_FUZZ=long`` runs 300 examples instead of 10.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import math
import os
import struct
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote

import duckdb
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.json as pjson
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dpexport

settings.register_profile(
    "rows-ci",
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("rows-long", parent=settings.get_profile("rows-ci"), max_examples=300)
LONG = os.environ.get("DPEXPORT_FUZZ") == "long"
FUZZ = settings.get_profile("rows-long" if LONG else "rows-ci")
#: the long profile takes about 15 minutes, past the suite's 600 s a test
TIMEOUT = pytest.mark.timeout(3600 if LONG else 600)

AT = datetime(2025, 9, 17, 6, tzinfo=UTC)
COLUMNS = ["id", "s", "f", "d", "ts", "kind", "event_time"]
TYPES = {
    "id": "BIGINT",
    "s": "VARCHAR",
    "f": "DOUBLE",
    "d": "DATE",
    "ts": "TIMESTAMPTZ",
    "kind": "VARCHAR",
    "event_time": "TIMESTAMPTZ",
}
#: name -> (format, codec, partitioned): each an export of its own copy of the table
EXPORTS = {
    "parquet_snappy": ("PARQUET", "SNAPPY", True),
    "parquet_zstd": ("PARQUET", "ZSTD", False),  # unpartitioned: DuckDB writes it
    "jsonl": ("JSONL", "NONE", True),
    "jsonl_gz": ("JSONL", "GZIP", True),
    "csv": ("CSV", "NONE", True),
    "csv_zst": ("CSV", "ZSTD", True),
}
PARTITIONED = "partitioning: {field: event_time, granularity: daily, secondary: kind}"
MB_TEXT = "<1MB>"
LONGEST_NAME = 255

# -- strategies -----------------------------------------------------------------------------
SPECIALS = ["\x00", "\r", "\n", "\r\n", '"', "'", ",", ";", "\\", "\\N", "NULL", "\t", " "]
ODD = ["é", "🙂", "\u2028", "\ufeff", "%", "%2F", "_", "\x7f", "\\u0000", '\\"', '""']
TEXT = st.one_of(
    st.none(),
    st.lists(st.sampled_from([*SPECIALS, *ODD, "a", "b"]), max_size=8).map("".join),
    st.text(max_size=8),  # any code point hypothesis draws (no lone surrogates: see doc)
    st.sampled_from(["", "NULL", "\\N", '"', "\\", "\n", "null", "NaN", "Infinity", MB_TEXT]),
)
KINDS = st.one_of(
    st.sampled_from(
        [None, "", "../../x", "a/b", ".", "..", "\n", "_null_", "%2E%2E", "x" * 300, "é" * 200,
         "/" * 100, "a" * 189 + "/", "\\..\\x", "~", "plain"]
    ),
    st.text(alphabet=st.sampled_from(["/", ".", "\\", "\n", "a", "%", "_", "é"]), max_size=6),
)  # fmt: skip
FLOATS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308]),
)
FIRST_DAY, LAST_DAY = date(1, 1, 1), date(9999, 12, 31)
DATES = st.one_of(st.none(), st.sampled_from([FIRST_DAY, LAST_DAY]), st.dates(FIRST_DAY, LAST_DAY))
FIRST = datetime(1, 1, 1, tzinfo=UTC)
LAST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
TIMES = st.one_of(
    st.none(),
    st.sampled_from([FIRST, LAST]),
    st.datetimes(FIRST.replace(tzinfo=None), LAST.replace(tzinfo=None)).map(
        lambda t: t.replace(tzinfo=UTC)
    ),
)
DAY_ONE = datetime(2025, 9, 14, tzinfo=UTC)
EVENT_TIMES = st.one_of(
    st.none(),
    st.integers(0, 3 * 86400 - 1).map(lambda s: DAY_ONE + timedelta(seconds=s)),
    st.sampled_from([FIRST, LAST]),  # the folders 0001/01/01 and 9999/12/31
)

Row = tuple[Any, ...]


class Csv(NamedTuple):
    """The CSV dialect of an example (``formats.CSV``): quote ``"``, escape ``\\``."""

    null_marker: str
    delimiter: str


@st.composite
def tables(draw: st.DrawFn) -> list[Row]:
    """One to eight rows (ids 0...), at most one 1 MB string among them."""
    rows = []
    for i in range(draw(st.integers(1, 8))):
        values = [
            draw(TEXT),
            draw(FLOATS),
            draw(DATES),
            draw(TIMES),
            draw(KINDS),
            draw(EVENT_TIMES),
        ]
        rows.append((i, *values))
    return rows


def _expand(rows: list[Row]) -> list[Row]:
    """``<1MB>`` becomes 1 MB of text holding every special character (drawn as a marker:
    hypothesis would print a falsifying example that large)."""
    unit = "".join(SPECIALS + ODD) + "a" * 64
    big = (unit * (1024 * 1024 // len(unit) + 1))[: 1024 * 1024]
    seen = False
    out = []
    for row in rows:
        if row[1] == MB_TEXT and not seen:
            seen = True
            row = (row[0], big, *row[2:])
        out.append(row)
    return out


# -- the export ------------------------------------------------------------------------------
def _config(csv: Csv) -> str:
    items = []
    for name, (fmt, codec, partitioned) in EXPORTS.items():
        items.append(
            f"  - source: ds.{name}\n    destination: gs://b/out/{name}/\n"
            f"    format: {fmt}\n    compression: {codec}\n    mode: FULL_REFRESH\n"
            + (f"    {PARTITIONED}\n" if partitioned else "")
        )
    return (
        "project: p\nenvironment: test\n"
        "warehouse: {engine: duckdb, path: warehouse.duckdb}\n"
        "buckets: {exports: gs://b}\n"
        f"formats:\n  CSV: {{null_marker: {json.dumps(csv.null_marker)}, "
        f"delimiter: {json.dumps(csv.delimiter)}}}\n"
        "exports:\n" + "".join(items)
    )


def _warehouse(folder: Path, rows: list[Row]) -> None:
    con = duckdb.connect(str(folder / "warehouse.duckdb"))
    try:
        con.execute("CREATE SCHEMA ds")
        columns = ", ".join(f"{c} {TYPES[c]}" for c in COLUMNS)
        con.execute(f"CREATE TABLE ds.src ({columns})")
        con.executemany("INSERT INTO ds.src VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        for name in EXPORTS:
            con.execute(f"CREATE TABLE ds.{name} AS SELECT * FROM ds.src")
    finally:
        con.close()


def _export(folder: Path, rows: list[Row], csv: Csv) -> Path:
    """Export ``rows`` with every format into ``folder/sandbox/root``; returns the root."""
    _warehouse(folder, rows)
    config = folder / "dpexport.yaml"
    config.write_text(_config(csv), encoding="utf-8")
    root = folder / "sandbox" / "root"
    quiet = logging.getLogger("dpexport")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # each run's progress lines, not wanted here
    try:
        results = dpexport.run(config, at=AT, local_root=root, raise_on_failure=False)
    finally:
        quiet.setLevel(level)
    failed = [(r.table, r.error) for r in results if r.status != "SUCCESS"]
    assert not failed, failed
    assert len(results) == len(EXPORTS)
    return root


# -- what a user compares --------------------------------------------------------------------
def _norm(column: str, value: Any) -> Any:
    """A value as compared: floats by their bits (any NaN is one), times in UTC."""
    if value is None:
        return None
    if column == "f":
        value = float(value)
        return "nan" if math.isnan(value) else struct.pack(">d", value).hex()
    if column in ("ts", "event_time"):
        return value.astimezone(UTC)
    return value


def _rows(records: Iterator[dict[str, Any]]) -> dict[int, Row]:
    out: dict[int, Row] = {}
    for rec in records:
        assert rec["id"] not in out, f"row {rec['id']} read twice"
        out[rec["id"]] = tuple(_norm(c, rec[c]) for c in COLUMNS)
    return out


def _expected(rows: list[Row]) -> dict[int, Row]:
    return _rows(dict(zip(COLUMNS, row, strict=True)) for row in rows)


def _data_files(dest: Path) -> list[Path]:
    return sorted(
        p
        for p in dest.rglob("*")
        if p.is_file() and not p.name.endswith(".json") and p.name not in ("SUCCESS", "FAILURE")
    )


def _duckdb(sql: str, params: list[Any]) -> Iterator[dict[str, Any]]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        cur = con.execute(sql, params)
        names = [d[0] for d in cur.description]
        for row in cur.fetchall():
            yield dict(zip(names, row, strict=True))
    finally:
        con.close()


_DUCK_COLUMNS = "{" + ", ".join(f"'{c}': '{t}'" for c, t in TYPES.items()) + "}"
ARROW_TYPES = pa.schema(
    [("id", pa.int64()), ("s", pa.string()), ("f", pa.float64()), ("d", pa.date32()),
     ("ts", pa.timestamp("us", "UTC")), ("kind", pa.string()),
     ("event_time", pa.timestamp("us", "UTC"))]
)  # fmt: skip


def _parquet(path: Path) -> Iterator[dict[str, Any]]:
    yield from pq.read_table(path).to_pylist()


def _parquet_duckdb(path: Path) -> Iterator[dict[str, Any]]:
    yield from _duckdb("SELECT * FROM read_parquet(?)", [str(path)])


def _jsonl_text(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def _jsonl_python(path: Path) -> Iterator[dict[str, Any]]:
    floats = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
    for line in _jsonl_text(path).decode("utf-8").split("\n")[:-1]:
        rec = json.loads(line)
        f = rec["f"]
        rec["f"] = floats[f] if isinstance(f, str) else f
        rec["d"] = None if rec["d"] is None else date.fromisoformat(rec["d"])
        for c in ("ts", "event_time"):
            rec[c] = None if rec[c] is None else datetime.fromisoformat(rec[c])
        yield rec


def _jsonl_arrow(path: Path) -> dict[int, tuple[Any, Any]]:
    """The text columns as pyarrow's JSON reader gives them: id -> (s, kind)."""
    schema = pa.schema([("id", pa.int64()), ("s", pa.string()), ("kind", pa.string())])
    options = pjson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    block = max(1 << 20, 2 * len(_jsonl_text(path)))
    table = pjson.read_json(
        io.BytesIO(_jsonl_text(path)),
        read_options=pjson.ReadOptions(block_size=block),
        parse_options=options,
    )
    return {r["id"]: (r["s"], r["kind"]) for r in table.to_pylist()}


def _jsonl_duckdb(path: Path) -> Iterator[dict[str, Any]]:
    sql = f"SELECT * FROM read_json(?, columns={_DUCK_COLUMNS}, maximum_object_size=16777216)"
    yield from _duckdb(sql, [str(path)])


def _csv_duckdb(path: Path, csv: Csv) -> Iterator[dict[str, Any]]:
    sql = (
        "SELECT * FROM read_csv(?, header=true, delim=?, quote='\"', escape='\\', "
        f"nullstr=?, allow_quoted_nulls=false, columns={_DUCK_COLUMNS}, "
        "max_line_size=16777216)"
    )
    yield from _duckdb(sql, [str(path), csv.delimiter, csv.null_marker])


def _csv_arrow(path: Path, csv: Csv) -> Iterator[dict[str, Any]]:
    compression = {".zst": "zstd", ".csv": None}[path.suffix]
    with pa.input_stream(str(path), compression=compression) as stream:
        table = pcsv.read_csv(
            stream,
            read_options=pcsv.ReadOptions(block_size=16 << 20),
            parse_options=pcsv.ParseOptions(
                delimiter=csv.delimiter,
                quote_char='"',
                escape_char="\\",
                double_quote=False,
                newlines_in_values=True,
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=ARROW_TYPES,
                null_values=[csv.null_marker],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
    yield from table.to_pylist()


def _read_back(
    dest: Path, fmt: str, csv: Csv
) -> tuple[list[tuple[str, dict[int, Row]]], dict[Path, list[int]]]:
    """Every reader's rows over every data file of ``dest``, and each file's ids."""
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    arrow_text: dict[int, tuple[Any, Any]] = {}
    ids: dict[Path, list[int]] = {}
    for path in _data_files(dest):
        if fmt == "PARQUET":
            recs = list(_parquet(path))
            found["pyarrow.parquet"] += recs
            found["duckdb read_parquet"] += _parquet_duckdb(path)
        elif fmt == "JSONL":
            recs = list(_jsonl_python(path))
            found["json"] += recs
            found["duckdb read_json"] += _jsonl_duckdb(path)
            arrow_text.update(_jsonl_arrow(path))
        else:
            recs = list(_csv_duckdb(path, csv))
            found["duckdb read_csv"] += recs
            found["pyarrow.csv"] += _csv_arrow(path, csv)
        ids[path] = [rec["id"] for rec in recs]
    out = [(reader, _rows(iter(recs))) for reader, recs in found.items()]
    if fmt == "JSONL":
        via_json = dict(out)["json"]
        assert arrow_text == {i: (r[1], r[5]) for i, r in via_json.items()}, "pyarrow.json"
    return out, ids


# -- where files land ------------------------------------------------------------------------
RESERVED = ("idempotency-tokens", "dead-letter-queue", "export-logs", "_state", "_staging")
#: the local store's lock files (a cloud bucket has none)
LOCKS = ".dpexport-locks"


def _assert_contained(folder: Path, root: Path) -> None:
    """Nothing outside the root (``../../x`` stayed in); inside it, only the bucket's
    destinations and reserved prefixes."""
    outside = {p.relative_to(folder).as_posix() for p in folder.rglob("*")}
    outside = {p for p in outside if not p.startswith("sandbox/root")}
    assert outside <= {"dpexport.yaml", "warehouse.duckdb", "warehouse.duckdb.wal", "sandbox"}
    assert [p.name for p in root.iterdir()] == ["gs"]
    assert [p.name for p in (root / "gs").iterdir()] == ["b"]
    tops = {p.name for p in (root / "gs" / "b").iterdir()}
    assert tops <= {"out", LOCKS, *RESERVED}, tops
    assert {p.name for p in (root / "gs" / "b" / "out").iterdir()} == set(EXPORTS)


def _segment_holds(segment: str, kind: str | None) -> bool:
    """Whether a sub-partition folder's name is that of ``kind`` (README, "Where files
    land"): ``_null_``, ``_empty_``, the percent-encoded value, or a long value's
    encoded start, ``!`` and the sha256 of the value."""
    if kind is None or kind == "":
        return segment == ("_null_" if kind is None else "_empty_")
    if "!" not in segment:
        return unquote(segment) == kind
    start, _, digest = segment.partition("!")
    return (
        kind.encode().startswith(unquote(start).encode())
        and digest == hashlib.sha256(kind.encode()).hexdigest()
    )


def _day(t: datetime) -> str:
    """A daily folder, years padded to four digits (``0001/01/01``: strftime gives ``1``)."""
    return f"{t.year:04d}/{t.month:02d}/{t.day:02d}"


def _assert_folders(
    files: dict[Path, list[int]], dest: Path, partitioned: bool, rows: list[Row]
) -> None:
    """Each data file in the folder of its rows' day and partition value; every folder
    name one component of at most 255 bytes; distinct values, distinct folders."""
    by_folder: dict[str, set[Any]] = defaultdict(set)
    by_id = {row[0]: row for row in rows}
    for path, ids in files.items():
        rel = path.parent.relative_to(dest).as_posix()
        assert all(0 < len(s.encode()) <= LONGEST_NAME for s in rel.split("/")), rel
        assert not any(s.startswith(".") for s in rel.split("/")), rel  # no hidden folder
        for i in ids:
            row = by_id[i]
            if not partitioned:
                assert rel == _day(AT), rel
                continue
            day, _, segment = rel.rpartition("/")
            when = row[6]
            assert day == ("_null_" if when is None else _day(when)), (rel, row)
            assert _segment_holds(segment, row[5]), (rel, row[5])
            by_folder[rel].add(row[5])
    for rel, kinds in by_folder.items():
        assert len(kinds) == 1, (rel, kinds)


# -- the tests -------------------------------------------------------------------------------
@TIMEOUT
@FUZZ
@given(rows=tables(), csv=st.builds(Csv, st.sampled_from(["", "NULL"]), st.sampled_from(",;\t|")))
def test_rows_round_trip_exactly_through_every_format(rows: list[Row], csv: Csv) -> None:
    rows = _expand(rows)
    expected = _expected(rows)
    with tempfile.TemporaryDirectory(prefix="dpexport-rowfuzz-") as tmp:
        folder = Path(tmp)
        root = _export(folder, rows, csv)
        _assert_contained(folder, root)
        for name, (fmt, _codec, partitioned) in EXPORTS.items():
            dest = root / "gs" / "b" / "out" / name
            read, files = _read_back(dest, fmt, csv)
            for reader, got in read:
                assert got == expected, (name, reader, _diff(got, expected))
            _assert_folders(files, dest, partitioned, rows)
            report = dpexport.verify(f"gs://b/out/{name}/", local_root=root)
            assert report.ok, (name, list(report.lines()))


def _diff(got: dict[int, Row], expected: dict[int, Row]) -> list[Any]:
    out: list[Any] = []
    for i in sorted(set(got) | set(expected)):
        a, b = got.get(i), expected.get(i)
        if a != b:
            if a is None or b is None:
                out.append((i, a, b))
            else:
                out.append(
                    (i, [(c, x, y) for c, x, y in zip(COLUMNS, a, b, strict=True) if x != y])
                )
    return [str(d)[:400] for d in out[:5]]


def test_a_lone_surrogate_is_refused_by_the_warehouse(tmp_path: Path) -> None:
    """A Python ``str`` holding a lone surrogate is not text any reader or writer of
    these formats can hold: DuckDB refuses to store it, naming it, and Arrow refuses
    to make a string of it. So no export ever meets one (no crash, no silent change)."""
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE t (s VARCHAR)")
    with pytest.raises(duckdb.InvalidInputException, match="surrogate '\\\\ud800'"):
        con.execute("INSERT INTO t VALUES (?)", ["a\ud800b"])
    with pytest.raises(duckdb.Error, match=r"(?i)invalid utf-?8"):
        con.execute("SELECT decode('\\xED\\xA0\\x80'::BLOB)")  # its UTF-8 form
    con.close()
    with pytest.raises(UnicodeEncodeError):
        pa.array(["a\ud800b"], pa.string())
