"""``dpexport compact`` keeps the source's Arrow types and values in every format (issue
22): an INCREMENTAL table of DECIMAL(38,9), TIMESTAMP WITH TIME ZONE, INTEGER, DATE,
INTERVAL, unicode VARCHAR and NULLs, exported in two increments as JSONL, CSV and
Parquet (each in a codec or two, JSONL also client-side encrypted, and one with the
schema version column), compacted, and read back by DuckDB's and pyarrow's own readers:
exactly the source rows, as the source's types, and no new schema version in
``_state/schemas``. JSONL and CSV increments were read with inferred types before (a
DECIMAL came back a string, an INTEGER an int64). A manifest older than
``arrow_schema`` borrows another increment's recorded types, or is read as before with
a warning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dpexport.config.spec import CsvOptions
from dpexport.formats import read_file
from dpexport.publish.manifest import recorded_schema
from dpexport.security.crypto import LocalKeyProvider
from tests.e2e.cli import dpexport

T1, T2, T3 = "2025-09-16T00:00:00Z", "2025-09-17T00:00:00Z", "2025-09-17T01:00:00Z"
COLUMNS = (
    "id INTEGER, amount DECIMAL(38,9), seen_at TIMESTAMPTZ, day DATE, span INTERVAL, name VARCHAR"
)
#: the source's types as Arrow has them: what the snapshot must have
SOURCE_SCHEMA = pa.schema(
    [
        ("id", pa.int32()),
        ("amount", pa.decimal128(38, 9)),
        ("seen_at", pa.timestamp("us", "UTC")),
        ("day", pa.date32()),
        ("span", pa.month_day_nano_interval()),
        ("name", pa.string()),
    ]
)
DUCKDB_TYPES = (
    "{id:'INTEGER', amount:'DECIMAL(38,9)', seen_at:'TIMESTAMPTZ', day:'DATE', "
    "span:'INTERVAL', name:'VARCHAR'}"
)
FIRST = """
 (1, 12345678901234567890.123456789, TIMESTAMPTZ '2025-09-15 10:00:00.123456+00',
  DATE '2025-09-15', INTERVAL '1 year 2 months 3 days 04:05:06.789123', 'café ☕ שלום'),
 (2, -0.000000001, TIMESTAMPTZ '2025-09-15 11:00:00+00', DATE '1969-12-31',
  INTERVAL '-1 day', ''),
 (3, NULL, TIMESTAMPTZ '2025-09-15 12:00:00+00', NULL, NULL, NULL)
"""
#: the second increment: key 2 changes (to the largest DECIMAL(38,9)), key 4 is new
SECOND = """
 UPDATE {t} SET amount = 99999999999999999999999999999.999999999,
   seen_at = TIMESTAMPTZ '2025-09-16 06:00:00+00', name = 'emoji 😀 "quoted", comma'
   WHERE id = 2;
 INSERT INTO {t} VALUES (4, 0, TIMESTAMPTZ '2025-09-16 07:00:00+00', DATE '2000-02-29',
   INTERVAL '0 seconds', 'two' || chr(10) || 'lines');
"""
ENCRYPTED = (
    "    encryption: CMEK\n"
    "    kms_key: projects/p/locations/l/keyRings/r/cryptoKeys/k\n"
    "    client_side: true\n"
)
#: table -> (format, codec, extra settings)
TABLES: dict[str, tuple[str, str, str]] = {
    "jsonl_gzip": ("JSONL", "GZIP", ""),
    "jsonl_zstd": ("JSONL", "ZSTD", ""),
    "jsonl_encrypted": ("JSONL", "GZIP", ENCRYPTED),
    "jsonl_versioned": ("JSONL", "NONE", "    schema_evolution: {enabled: true}\n"),
    "csv_none": ("CSV", "NONE", "    csv: {escape_character: '\"'}\n"),
    "csv_gzip": ("CSV", "GZIP", ""),
    "csv_encrypted": ("CSV", "ZSTD", ENCRYPTED),
    "parquet_snappy": ("PARQUET", "SNAPPY", ""),
    "parquet_encrypted": ("PARQUET", "ZSTD", ENCRYPTED),
}
HEAD = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
"""
ITEM = """\
  - source: ds.{table}
    destination: gs://b/{table}/
    format: {fmt}
    compression: {codec}
    mode: INCREMENTAL
    change_column: seen_at
    merge_key: id
"""


def _config(base: Path, tables: dict[str, tuple[str, str, str]]) -> Path:
    items = "".join(
        ITEM.format(table=t, fmt=fmt, codec=codec) + extra
        for t, (fmt, codec, extra) in tables.items()
    )
    config = base / "dpexport.yaml"
    config.write_text(HEAD + items, encoding="utf-8")
    return config


def _warehouse(base: Path, tables: list[str], sql: str) -> None:
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA IF NOT EXISTS ds")
    for t in tables:
        con.execute(sql.format(t=f"ds.{t}"))
    con.close()


def _source(base: Path, table: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(base / "warehouse.duckdb"), read_only=True)
    try:
        return con.sql(f"SELECT * FROM ds.{table} ORDER BY id").to_arrow_table().to_pylist()
    finally:
        con.close()


def _run(*args: str | Path) -> str:
    result = dpexport(*args)
    assert result.code == 0, result.out + result.err
    return result.err


def _versions(root: Path, table: str) -> list[str]:
    doc = json.loads((root / "_state" / "schemas" / f"ds.{table}.json").read_text("utf-8"))
    return [v["version"] for v in doc["versions"]]


def _snapshot(root: Path, table: str) -> tuple[dict[str, Any], list[Path]]:
    [manifest] = (root / f"{table}__snapshot").glob("*/*/*/manifest_*.json")
    doc = json.loads(manifest.read_text("utf-8"))
    return doc, [manifest.parent / f["name"] for f in doc["files"]]


@pytest.fixture(scope="module")
def compacted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Every table exported in two increments, then compacted; (base, bucket root)."""
    base = tmp_path_factory.mktemp("compact_types")
    out = base / "out"
    config = _config(base, TABLES)
    _warehouse(
        base, list(TABLES), f"CREATE TABLE {{t}} ({COLUMNS}); INSERT INTO {{t}} VALUES {FIRST}"
    )
    _run("-c", config, "--local-root", out, "run", "--at", T1)
    _warehouse(base, list(TABLES), SECOND)
    _run("-c", config, "--local-root", out, "run", "--at", T2)
    for table in TABLES:
        _run("-c", config, "--local-root", out, "compact", "--table", table, "--at", T3)
    return base, out / "gs" / "b"


def _read_independently(path: Path, fmt: str, escape: str, kms: Path) -> pa.Table:
    """The snapshot file read by DuckDB (JSONL, CSV: told the source's column types) or
    pyarrow (Parquet); an encrypted one decrypted by dpexport first."""
    if path.name.endswith(".enc"):
        plain = path.with_name(path.name.removesuffix(".enc"))
        _run("--local-root", kms.parent, "decrypt", path, "-o", plain)
        path = plain
    if fmt == "PARQUET":
        return pq.read_table(path)
    reader = (
        f"read_json('{path}', columns={DUCKDB_TYPES})"
        if fmt == "JSONL"
        else f"read_csv('{path}', types={DUCKDB_TYPES}, escape='{escape}', "
        "allow_quoted_nulls=false)"
    )
    rel = duckdb.sql(f"SELECT * FROM {reader} ORDER BY id")
    assert rel is not None
    return rel.to_arrow_table()


@pytest.mark.parametrize("table", list(TABLES))
def test_the_snapshot_has_the_sources_types_and_values(
    compacted: tuple[Path, Path], table: str
) -> None:
    base, root = compacted
    fmt, codec, extra = TABLES[table]
    doc, [path] = _snapshot(root, table)
    expected = _source(base, table)
    assert len(expected) == 4 and doc["statistics"]["row_count"] == 4
    written = SOURCE_SCHEMA
    if "schema_evolution" in extra:  # the version column, added again by the snapshot
        written = written.append(pa.field("_schema_version", pa.string(), False))
    snapshot_schema = recorded_schema(doc)
    assert snapshot_schema is not None and snapshot_schema.equals(written), snapshot_schema
    kms = root.parent.parent / "kms"
    csv = CsvOptions(escape_character='"') if "escape" in extra else CsvOptions()
    back = read_file(path, fmt, codec, schema=written, csv=csv, decryptor=LocalKeyProvider(kms))
    rows = back.sort_by("id").to_pylist()
    if "schema_evolution" in extra:
        assert {r.pop("_schema_version") for r in rows} == set(_versions(root, table))
    assert rows == expected  # Decimal == Decimal, every digit
    other = _read_independently(path, fmt, csv.escape_character, kms)
    if fmt == "PARQUET":  # the interval is Parquet's months/days/nanoseconds struct
        assert other.schema.field("span").type == pa.struct(
            [("months", pa.int32()), ("days", pa.int32()), ("nanoseconds", pa.int64())]
        )
        other = other.drop_columns(["span"])
        expected = [{k: v for k, v in r.items() if k != "span"} for r in expected]
        assert other.schema.equals(SOURCE_SCHEMA.remove(4))
    got = other.sort_by("id").to_pylist()
    assert [{k: r[k] for k in expected[0]} for r in got] == expected


@pytest.mark.parametrize("table", list(TABLES))
def test_compact_records_no_new_schema_version(compacted: tuple[Path, Path], table: str) -> None:
    _, root = compacted
    assert len(_versions(root, table)) == 1
    doc, _ = _snapshot(root, table)
    [increment, *_] = (root / table).glob("*/*/*/manifest_*.json")
    source_doc = json.loads(increment.read_text("utf-8"))
    assert doc["statistics"]["schema_version"] == source_doc["statistics"]["schema_version"]
    assert doc["validation"]["schema_hash"] == source_doc["validation"]["schema_hash"]
    assert doc["schema"] == source_doc["schema"]


def _strip_arrow_schema(folder: Path) -> None:
    """Make each manifest in ``folder`` look as one written before ``arrow_schema``."""
    for manifest in folder.glob("*/*/*/manifest_*.json"):
        doc = json.loads(manifest.read_text("utf-8"))
        del doc["arrow_schema"]
        manifest.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", "utf-8")


def _old_increment(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Table ``old`` (JSONL GZIP) exported once, its manifest stripped of
    ``arrow_schema`` as a manifest from before it: the config, local root and bucket."""
    config = _config(tmp_path, {"old": TABLES["jsonl_gzip"]})
    out, root = tmp_path / "out", tmp_path / "out" / "gs" / "b"
    _warehouse(
        tmp_path, ["old"], f"CREATE TABLE {{t}} ({COLUMNS}); INSERT INTO {{t}} VALUES {FIRST}"
    )
    _run("-c", config, "--local-root", out, "run", "--at", T1)
    _strip_arrow_schema(root / "old")
    return config, out, root


def test_an_old_increment_borrows_a_newer_ones_types(tmp_path: Path) -> None:
    """The first increment's manifest predates ``arrow_schema``; the second's records the
    same columns, so both are read as those types: the snapshot is exact, no warning."""
    config, out, root = _old_increment(tmp_path)
    _warehouse(tmp_path, ["old"], SECOND)
    _run("-c", config, "--local-root", out, "run", "--at", T2)
    err = _run("-c", config, "--local-root", out, "compact", "--table", "old", "--at", T3)
    assert "predates" not in err, err
    doc, [path] = _snapshot(root, "old")
    snapshot_schema = recorded_schema(doc)
    assert snapshot_schema is not None and snapshot_schema.equals(SOURCE_SCHEMA)
    back = read_file(path, "JSONL", "GZIP", schema=SOURCE_SCHEMA)
    assert back.sort_by("id").to_pylist() == _source(tmp_path, "old")
    assert len(_versions(root, "old")) == 1


def test_only_old_increments_are_read_as_before_with_a_warning(tmp_path: Path) -> None:
    """No manifest records its types: compact still folds the rows (with the types
    Arrow infers from the text, as before) and says which manifest it could not type."""
    config, out, root = _old_increment(tmp_path)
    [manifest] = (root / "old").glob("*/*/*/manifest_*.json")
    err = _run("-c", config, "--local-root", out, "compact", "--table", "old", "--at", T3)
    assert "predates 'arrow_schema'" in err and manifest.name in err, err
    doc, _ = _snapshot(root, "old")
    assert doc["statistics"]["row_count"] == 3
    snapshot_schema = recorded_schema(doc)
    assert snapshot_schema is not None
    assert snapshot_schema.field("amount").type == pa.string()  # inferred, as before


def test_an_old_increment_of_an_earlier_schema_is_converted_to_the_newest(
    tmp_path: Path,
) -> None:
    """Schema evolution between the increments: the first (old-style manifest) lacks the
    column added before the second. The snapshot has the newest schema's types, the old
    rows converted to them digit for digit (JSONL's decimal strings) and NULL in the new
    column; the version column is written again with the newest version, and compact
    adds no version to the two the exports recorded."""
    versioned = ("JSONL", "GZIP", "    schema_evolution: {enabled: true}\n")
    config = _config(tmp_path, {"grown": versioned})
    out, root = tmp_path / "out", tmp_path / "out" / "gs" / "b"
    _warehouse(
        tmp_path, ["grown"], f"CREATE TABLE {{t}} ({COLUMNS}); INSERT INTO {{t}} VALUES {FIRST}"
    )
    _run("-c", config, "--local-root", out, "run", "--at", T1)
    _strip_arrow_schema(root / "grown")
    grow = "ALTER TABLE {t} ADD COLUMN extra BIGINT; " + SECOND.replace(
        "'lines');", "'lines', 9223372036854775807);"
    )
    _warehouse(tmp_path, ["grown"], grow)
    _run("-c", config, "--local-root", out, "run", "--at", T2)
    err = _run("-c", config, "--local-root", out, "compact", "--table", "grown", "--at", T3)
    assert "predates 'arrow_schema'" in err and "converted to the snapshot's" in err, err
    versions = _versions(root, "grown")
    assert len(versions) == 2
    newest = SOURCE_SCHEMA.append(pa.field("extra", pa.int64())).append(
        pa.field("_schema_version", pa.string(), False)
    )
    doc, [path] = _snapshot(root, "grown")
    snapshot_schema = recorded_schema(doc)
    assert snapshot_schema is not None and snapshot_schema.equals(newest), snapshot_schema
    rows = read_file(path, "JSONL", "GZIP", schema=newest).sort_by("id").to_pylist()
    assert {r.pop("_schema_version") for r in rows} == {versions[-1]}
    assert rows == _source(tmp_path, "grown")
    assert [r["extra"] for r in rows] == [None, None, None, 9223372036854775807]
