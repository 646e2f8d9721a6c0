"""Spec 2.1's Parquet block, pasted as written (issue 24), is honoured in every file:
row groups of 128MB, data pages of at most 1MB, dictionary encoding, format version
2.6, SNAPPY, and the ``_schema_version`` column; read from the footers and page
headers with pyarrow, and the rows checked with DuckDB."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from dpexport.formats.parquet_dictionary import SAMPLE_ROWS
from tests.e2e.cli import plan_paths, run_ok
from tests.parquet_pages import DATA_PAGES, pages
from tests.unit.config.config_spec_blocks import BLOCKS

AT = "2025-09-16T14:30:22Z"
MB = 1024 * 1024
#: spec 2.1's block, verbatim (the copy the config tests share), under ``formats.PARQUET``
CONFIG = (
    "project: p\n"
    "environment: test\n"
    "warehouse: {engine: duckdb, path: warehouse.duckdb}\n"
    "buckets: {exports: gs://b}\n"
    "formats:\n  PARQUET:\n" + textwrap.indent(BLOCKS["2.1"][1], "    ") + "exports:\n"
    "  - source: ds.telemetry\n"
    "    destination: gs://b/telemetry/\n"
    "    format: PARQUET\n"
)
#: ~1 KB a row: 2.3 row groups of 128MB. ``wide_id`` (96 distinct characters a row) is
#: written PLAIN, in pages ended by the 1MB size, as are the other distinct ``id``,
#: ``created_at`` and ``value``; ``payload`` repeats 50 values of ~900 bytes and
#: ``sensor_type`` 12 (a dictionary pays)
ROWS = 300_000
WIDE = 96
TABLE = f"""
CREATE TABLE ds.telemetry AS SELECT
    i AS id,
    md5(i::VARCHAR) || md5((i + 1)::VARCHAR) || md5((i + 2)::VARCHAR) AS wide_id,
    'sensor-' || (i % 12) AS sensor_type,
    repeat('x', 900) || (i % 50) AS payload,
    TIMESTAMP '2025-09-16 00:00:00' + to_microseconds(i) AS created_at,
    i * 0.5 AS value
FROM range({ROWS}) t(i)
"""
REPEATED = {"sensor_type", "payload", "_schema_version"}


def test_spec_block_is_honoured_in_the_footers(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(TABLE)
    con.close()
    config = tmp_path / "dpexport.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    assert plan_paths(config, tmp_path / "plan", AT)["ds.telemetry"].startswith("streamed")
    [record] = json.loads(run_ok(config, tmp_path / "out", AT, "--json").out)
    [uri] = record["manifests"]
    manifest_path = tmp_path / "out" / "gs" / uri.removeprefix("gs://")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    [entry] = manifest["files"]
    data = manifest_path.parent / entry["name"]
    assert data.name.endswith(".parquet.snappy")
    parquet = pq.ParquetFile(data)
    meta = parquet.metadata
    names = meta.schema.names

    # version 2.6, SNAPPY in every column chunk
    assert meta.format_version == "2.6"
    assert meta.num_rows == ROWS

    # row groups of 128MB of Arrow bytes: as many as the rows' bytes / 128MB, each
    # within a row's rounding of 128MB but the last
    groups = [parquet.read_row_group(i).nbytes for i in range(meta.num_row_groups)]
    assert meta.num_row_groups == math.ceil(sum(groups) / (128 * MB)) == 3, groups
    assert all(0.98 * 128 * MB <= size <= 128 * MB for size in groups[:-1]), groups
    assert all(meta.row_group(i).total_byte_size <= 128 * MB for i in range(3))

    widest = WIDE + 4  # a value and its length
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            assert chunk.compression == "SNAPPY", (g, chunk.path_in_schema)
            # dictionary encoding ("PLAIN_DICTIONARY", named RLE_DICTIONARY since 2.0)
            # where it pays; PLAIN where a page's worth of values is mostly distinct,
            # the fallback parquet-mr makes
            if chunk.path_in_schema in REPEATED:
                assert chunk.has_dictionary_page, (g, chunk.path_in_schema)
                assert {"PLAIN_DICTIONARY", "RLE_DICTIONARY"} & set(chunk.encodings)
            else:
                assert not chunk.has_dictionary_page, (g, chunk.path_in_schema)
                assert set(chunk.encodings) == {"PLAIN", "RLE"}, (g, chunk.path_in_schema)
            sizes = [size for _, size in pages(data, chunk)]
            # no page over 1MB by more than one write batch (1,024 values) of the
            # widest: Arrow ends a page once it reaches the size
            assert all(size <= MB + 1024 * widest for size in sizes), sizes
        # the wide column's PLAIN pages are ended by the size (not by the 20,000 rows
        # Arrow also ends a page at): page_size took effect
        wide = group.column(names.index("wide_id"))
        plain = [size for kind, size in pages(data, wide) if kind in DATA_PAGES]
        assert max(plain) >= MB, plain

    # the _schema_version column: a string, every row the manifest's version
    table = pq.read_table(data, columns=["_schema_version"])
    assert names[-1] == "_schema_version"
    assert table.schema.field("_schema_version").type == pa.string()
    assert table.column(0).unique().to_pylist() == [manifest["statistics"]["schema_version"]]

    # every row, as the warehouse holds it
    summary = "count(*), sum(id), count(DISTINCT wide_id), sum(length(payload)), max(created_at)"
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as source:
        want = source.execute(f"SELECT {summary} FROM ds.telemetry").fetchall()
    with duckdb.connect() as reader:
        got = reader.execute(f"SELECT {summary} FROM read_parquet('{data}')").fetchall()
    assert got == want


#: runs ``dpexport run`` in a fresh interpreter, then prints which of the modules it
#: should not need it imported (an empty line: none)
_LAZY_IMPORTS = """
import runpy, sys
sys.argv = ["dpexport", *sys.argv[1:]]
try:
    runpy.run_module("dpexport", run_name="__main__")
except SystemExit as exc:
    assert not exc.code, exc.code
unused = ("pandas", "pyarrow.compute", "prometheus_client", "dpexport.cli.dashboard")
print(",".join(m for m in unused if m in sys.modules))
"""


def test_a_spec_block_export_imports_nothing_it_does_not_use(tmp_path: Path) -> None:
    """pyarrow imports pandas, when installed, for any conversion of Python objects
    (~250 ms, a tenth of a 5M-row export): the streamed path makes none. Nor does a
    one-folder export need pyarrow.compute, nor a run without --metrics-file
    prometheus_client (~30 ms each), not even where a row group of more rows than a page
    has its columns' dictionaries judged (``formats.parquet_dictionary``); nor the other
    commands' modules (the dashboard's, ~10 ms with its imports)."""
    import subprocess
    import sys

    import pandas  # type: ignore[import-untyped]  # noqa: F401  (else vacuous)

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("CREATE SCHEMA ds")
        con.execute(TABLE.replace(f"range({ROWS})", f"range({SAMPLE_ROWS + 1000})"))
    config = tmp_path / "dpexport.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    args = ["-c", str(config), "--local-root", str(tmp_path / "out"), "run", "--at", AT]
    done = subprocess.run(
        [sys.executable, "-c", _LAZY_IMPORTS, *args], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "", done.stdout + done.stderr
    assert list((tmp_path / "out").rglob("*.parquet.snappy"))
