"""``dpexport files``: the committed files of a table, and the DuckDB view / BigQuery external
table over them, checked by running the view in DuckDB against the source table."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e.cli import dpexport, warehouse_sql

T1 = "2025-09-16T14:30:22Z"
T2 = "2025-09-17T14:30:22Z"
T3 = "2025-09-18T14:30:22Z"
DEST = "gs://diagnosticpro-exports/prod/diagnosticpro_prod/"

HEAD = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://diagnosticpro-exports}
exports:
"""

CATALOG = f"""\
  - source: diagnosticpro_prod.parts_catalog
    destination: {DEST}parts_catalog/
    format: FORMAT
    compression: CODEC
    mode: FULL_REFRESH
"""

INVENTORY = f"""\
  - source: diagnosticpro_prod.parts_inventory
    destination: {DEST}parts_inventory/
    format: PARQUET
    compression: ZSTD
    mode: INCREMENTAL
    change_column: inventory_updated_at
    lookback_window: 4 hours
    merge_key: [part_id, location_id]
"""

CURRENT_INVENTORY = """SELECT * FROM w.diagnosticpro_prod.parts_inventory QUALIFY row_number()
    OVER (PARTITION BY part_id, location_id ORDER BY inventory_updated_at DESC) = 1"""


def _config(base: Path, body: str) -> Path:
    path = base / "files.yaml"
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def _cli(base: Path, config: Path, *args: str) -> Any:
    return dpexport("-c", config, "--local-root", base / "out", *args)


def _run(base: Path, config: Path, table: str, at: str) -> None:
    result = _cli(base, config, "run", "--table", table, "--at", at, "--json")
    assert result.code == 0, result.err
    assert [r["status"] for r in json.loads(result.out)] == ["SUCCESS"]


def _files(base: Path, config: Path, table: str, *args: str) -> dict[str, Any]:
    result = _cli(base, config, "files", table, "--json", *args)
    assert result.code == 0, result.err
    assert result.out.endswith("}\n") and result.out.count("\n") == 1
    doc: dict[str, Any] = json.loads(result.out)
    return doc


def _view_minus_source(base: Path, statement: str, view: str, source_sql: str) -> list[int]:
    """Run ``statement`` in a fresh DuckDB and compare its view with ``source_sql`` over
    the warehouse (attached as ``w``): rows only in the view, rows only in the source,
    and the view's row count."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH '{base / 'warehouse.duckdb'}' AS w (READ_ONLY)")
        con.execute(statement)
        source = f"({source_sql})"
        only_view = con.execute(
            f"SELECT count(*) FROM (SELECT * FROM {view} EXCEPT ALL SELECT * FROM {source})"
        ).fetchone()
        only_source = con.execute(
            f"SELECT count(*) FROM (SELECT * FROM {source} EXCEPT ALL SELECT * FROM {view})"
        ).fetchone()
        total = con.execute(f"SELECT count(*) FROM {view}").fetchone()
    finally:
        con.close()
    assert only_view and only_source and total
    return [only_view[0], only_source[0], total[0]]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "codec"), [("PARQUET", "SNAPPY"), ("JSONL", "GZIP"), ("CSV", "ZSTD")]
)
def test_full_refresh_view_reads_exactly_the_current_snapshot(
    demo_dir: Path, fmt: str, codec: str
) -> None:
    config = _config(demo_dir, CATALOG.replace("FORMAT", fmt).replace("CODEC", codec))
    _run(demo_dir, config, "parts_catalog", T1)
    first = _files(demo_dir, config, "parts_catalog")
    warehouse_sql(
        demo_dir,
        """DELETE FROM diagnosticpro_prod.parts_catalog WHERE part_id % 3 = 0;
        UPDATE diagnosticpro_prod.parts_catalog SET name = 'it''s "new", \\ really'
        WHERE part_id % 3 = 1""",
    )
    _run(demo_dir, config, "parts_catalog", T2)
    # a folder no SUCCESS vouches for (a stray or unfinished copy) is never listed
    [old] = first["files"]
    stray = Path(old["path"]).parent.parent / "20" / Path(old["path"]).name
    stray.parent.mkdir(parents=True)
    shutil.copyfile(next(Path(demo_dir / "out").rglob(f"*{Path(old['path']).suffix}")), stray)

    doc = _files(demo_dir, config, "parts_catalog", "--format", "duckdb")
    assert set(doc) == {"table", "format", "files", "statement"}
    assert doc["table"] == "diagnosticpro_prod.parts_catalog" and doc["format"] == "duckdb"
    (count,) = warehouse_sql(demo_dir, "SELECT count(*) FROM diagnosticpro_prod.parts_catalog")[0]
    assert [f["rows"] for f in doc["files"]] == [count]
    [entry] = doc["files"]
    assert entry["uri"].startswith(f"{DEST}parts_catalog/2025/09/17/parts_catalog_")
    assert (entry["format"], entry["codec"]) == (fmt, codec)
    assert str(stray) not in doc["statement"] and old["path"] not in doc["statement"]
    source = "SELECT * FROM w.diagnosticpro_prod.parts_catalog"
    assert _view_minus_source(demo_dir, doc["statement"], "parts_catalog", source) == [0, 0, count]

    plain = _cli(demo_dir, config, "files", "parts_catalog")
    assert plain.code == 0 and plain.out == entry["uri"] + "\n"


def _change_five(base: Path) -> None:
    """Newer versions of five keys, changed on 2025-09-17 01:00."""
    warehouse_sql(
        base,
        """INSERT INTO diagnosticpro_prod.parts_inventory
        SELECT * REPLACE (quantity + 1000 AS quantity,
                          TIMESTAMP '2025-09-17 01:00:00' AS inventory_updated_at)
        FROM diagnosticpro_prod.parts_inventory ORDER BY part_id, location_id LIMIT 5""",
    )


def _current_keys(base: Path) -> int:
    (keys,) = warehouse_sql(
        base,
        "SELECT count(DISTINCT (part_id, location_id)) FROM diagnosticpro_prod.parts_inventory",
    )[0]
    return int(keys)


@pytest.mark.slow
def test_incremental_view_folds_increments_and_the_compact_snapshot(demo_dir: Path) -> None:
    config = _config(demo_dir, INVENTORY)
    _run(demo_dir, config, "parts_inventory", T1)
    _change_five(demo_dir)
    _run(demo_dir, config, "parts_inventory", T2)
    doc = _files(demo_dir, config, "parts_inventory", "--format", "duckdb")
    assert len(doc["files"]) == 2 and sum(f["rows"] for f in doc["files"]) > 50
    assert "QUALIFY row_number()" in doc["statement"]
    current = _current_keys(demo_dir)
    got = _view_minus_source(demo_dir, doc["statement"], "parts_inventory", CURRENT_INVENTORY)
    assert got == [0, 0, current]

    compacted = _cli(demo_dir, config, "compact", "--table", "parts_inventory", "--at", T2)
    assert compacted.code == 0, compacted.err
    warehouse_sql(
        demo_dir,
        """INSERT INTO diagnosticpro_prod.parts_inventory
        SELECT * REPLACE (quantity + 2000 AS quantity,
                          TIMESTAMP '2025-09-18 01:00:00' AS inventory_updated_at)
        FROM diagnosticpro_prod.parts_inventory ORDER BY part_id DESC LIMIT 3""",
    )
    _run(demo_dir, config, "parts_inventory", T3)
    doc = _files(demo_dir, config, "parts_inventory", "--format", "duckdb")
    snapshot = [f for f in doc["files"] if "snapshot" in f["uri"]]
    later = [f for f in doc["files"] if "snapshot" not in f["uri"]]
    assert [f["rows"] for f in snapshot] == [current]
    assert [f["uri"].split("/parts_inventory/")[1][:10] for f in later] == ["2025/09/18"]
    got = _view_minus_source(demo_dir, doc["statement"], "parts_inventory", CURRENT_INVENTORY)
    assert got == [0, 0, current]


def test_bigquery_statement_names_exactly_the_files(demo_dir: Path) -> None:
    config = _config(demo_dir, CATALOG.replace("FORMAT", "CSV").replace("CODEC", "GZIP"))
    _run(demo_dir, config, "parts_catalog", T1)
    result = _cli(demo_dir, config, "files", "parts_catalog", "--format", "bigquery")
    assert result.code == 0, result.err
    [uri] = _files(demo_dir, config, "parts_catalog")["files"]
    assert result.out == (
        "-- escape_character '\\\\': BigQuery reads a quote inside a value only doubled "
        '(""), so a value holding " reads wrong; escape_character: \'"\' (RFC 4180) is '
        "the portable choice\n"
        "CREATE OR REPLACE EXTERNAL TABLE `diagnosticpro_prod.parts_catalog`\n"
        "OPTIONS (\n"
        "  format = 'CSV',\n"
        "  compression = 'GZIP',\n"
        "  field_delimiter = ',',\n"
        "  quote = '\"',\n"
        "  null_marker = '',\n"
        "  encoding = 'UTF-8',\n"
        "  skip_leading_rows = 1,\n"
        f"  uris = ['{uri['uri']}']\n"
        ");\n"
    )


def test_exit_codes_and_refusals(demo_dir: Path) -> None:
    config = _config(
        demo_dir,
        CATALOG.replace("FORMAT", "PARQUET").replace("CODEC", "ZSTD")
        + "    encryption: CMEK\n"
        + "    kms_key: projects/p/locations/l/keyRings/r/cryptoKeys/k\n"
        + "    client_side: true\n",
    )
    unknown = _cli(demo_dir, config, "files", "parts_catalogue")
    assert unknown.code == 2 and "did you mean 'parts_catalog'" in unknown.err
    bad = _cli(demo_dir, config, "files", "parts_catalog", "--format", "spark")
    assert bad.code == 2 and "spark" in bad.err
    empty = _cli(demo_dir, config, "files", "parts_catalog", "--json")
    assert empty.code == 0 and json.loads(empty.out)["files"] == []
    none = _cli(demo_dir, config, "files", "parts_catalog", "--format", "duckdb")
    assert none.code == 2 and "no committed files yet" in none.err
    _run(demo_dir, config, "parts_catalog", T1)
    listed = _cli(demo_dir, config, "files", "parts_catalog")
    assert listed.code == 0 and listed.out.endswith(".parquet.zst.enc\n")
    refused = _cli(demo_dir, config, "files", "parts_catalog", "--format", "duckdb")
    assert refused.code == 2 and "client-side encrypted" in refused.err
    assert refused.out == ""


def test_a_run_while_compact_works_cannot_hide_its_increment(
    demo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``compact`` holds the table's lease from listing the increments to committing the
    snapshot. A run of the table in between (here: another process, while compact loads)
    is skipped as "in progress elsewhere": had it committed, its increment would be in
    neither the snapshot nor, since it started before the snapshot, the increments
    ``files`` lists beside it, and its rows would be missing from the view."""
    from dpexport import api
    from dpexport.ops import compact as folding

    config = _config(demo_dir, INVENTORY)
    _run(demo_dir, config, "parts_inventory", T1)
    _change_five(demo_dir)
    during: list[Any] = []
    load = folding._load

    def load_then_run(*args: Any, **kwargs: Any) -> None:
        load(*args, **kwargs)
        args = ("run", "--table", "parts_inventory", "--at", T2, "--json")
        during.append(_cli(demo_dir, config, *args))

    monkeypatch.setattr(folding, "_load", load_then_run)
    at = datetime.fromisoformat(T2.replace("Z", "+00:00"))
    snapshot = api.compact(config, "parts_inventory", at=at, local_root=demo_dir / "out")
    assert snapshot.status == "SUCCESS"
    [other] = during
    assert other.code == 0, other.err
    [record] = json.loads(other.out)
    assert (record["status"], record["reason"]) == ("SKIPPED", "in progress elsewhere")

    _run(demo_dir, config, "parts_inventory", T2)  # the skipped run, once compact is done
    doc = _files(demo_dir, config, "parts_inventory", "--format", "duckdb")
    current = _current_keys(demo_dir)
    got = _view_minus_source(demo_dir, doc["statement"], "parts_inventory", CURRENT_INVENTORY)
    assert got == [0, 0, current]
