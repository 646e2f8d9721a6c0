"""Names a file system or a line counter trips on (issue 18, case 11).

- 11a: a partition value longer than 255 bytes made a folder name ext4 refuses ("File
  name too long"), on every run, so the table could never export again. Its folder is
  now the value's encoded start, ``!`` and its sha256: within 255 bytes, one per value,
  the same on every run; the rows keep the value.
- 11b: a CSV column name holding a newline is written quoted, and verification counted
  the header as one physical line, so the rest of it was a row too many and every run
  failed. Rows are now counted as CSV records, and DuckDB reads the file back.
- A value starting with ``.`` (``../../x``) made a hidden folder, which ``ls``, shell
  globs and the local store's listing skip: its leading dot is encoded.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.e2e.cli import dpexport, plan_paths, run_ok

AT = "2025-09-17T06:00:00Z"
LATER = "2025-09-18T06:00:00Z"
SHARED = "x" * 260  # two long values that differ only past the kept start
#: values whose percent-encoded names pass 255 bytes
CUT = [SHARED + "a", SHARED + "b", "é" * 200, "/" * 100]
LONG = [*CUT, "../../x", ".hidden", "short"]

CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - source: ds.events
    destination: gs://b/events/
    format: JSONL
    compression: GZIP
    mode: FULL_REFRESH
    partitioning: {field: event_time, granularity: daily, secondary: kind}
  - source: ds.events_p
    destination: gs://b/events_p/
    format: PARQUET
    compression: SNAPPY
    mode: APPEND
    partitioning: {field: event_time, granularity: daily, secondary: kind}
  - source: ds.wide
    destination: gs://b/wide/
    format: CSV
    compression: NONE
    mode: FULL_REFRESH
"""

#: column names CSV must quote: a newline, CR/LF, the quote, the delimiter, the escape
NAMES = ["a\nb", "c\r\nd", 'e"f', "g,h", "i\\j", "plain"]


@pytest.fixture()
def base(tmp_path: Path) -> Path:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        "CREATE TABLE ds.events AS SELECT i AS id, "
        "TIMESTAMPTZ '2025-09-15 00:00:00+00' + to_microseconds(i * 1000000) AS event_time, "
        "kinds[1 + i % len(kinds)] AS kind FROM range(70) t(i), (SELECT ? AS kinds)",
        [LONG],
    )
    con.execute("CREATE TABLE ds.events_p AS SELECT * FROM ds.events")
    columns = ", ".join(f"{i} AS {_quoted(n)}" for i, n in enumerate(NAMES))
    con.execute(f"CREATE TABLE ds.wide AS SELECT {columns} FROM range(3)")
    con.close()
    (tmp_path / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _folders(dest: Path, pattern: str) -> dict[str, set[str]]:
    """Each data file's folder (relative to the day) -> the kinds its rows hold."""
    out: dict[str, set[str]] = {}
    for path in dest.rglob(pattern):
        if pattern.endswith(".gz"):
            con = duckdb.connect()
            rows = con.execute("SELECT kind FROM read_json(?)", [str(path)]).fetchall()
            con.close()
            kinds = {r[0] for r in rows}
        else:
            kinds = set(pq.read_table(path)["kind"].to_pylist())
        out.setdefault(path.parent.name, set()).update(kinds)
    return out


def _assert_one_folder_per_value(folders: dict[str, set[str]]) -> None:
    assert len(folders) == len(LONG), sorted(folders)
    for name, kinds in folders.items():
        assert len(name.encode()) <= 255, name
        assert not name.startswith("."), name
        (kind,) = kinds
        if kind in CUT:
            assert name.endswith("!" + hashlib.sha256(kind.encode()).hexdigest()), name
        else:
            assert "!" not in name, name


def test_long_partition_values_export_on_every_run(base: Path) -> None:
    cfg = base / "dpexport.yaml"
    out = base / "out"
    run_ok(cfg, out, AT)
    first = _folders(out / "gs/b/events", "*.jsonl.gz")
    _assert_one_folder_per_value(first)
    _assert_one_folder_per_value(_folders(out / "gs/b/events_p", "*.parquet.snappy"))
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute(
        "INSERT INTO ds.events_p SELECT 1000 + i, TIMESTAMPTZ '2025-09-17 00:00:00+00', "
        "kinds[1 + i % len(kinds)] FROM range(7) t(i), (SELECT ? AS kinds)",
        [LONG],
    )
    con.close()
    run_ok(cfg, out, LATER)  # the same folders again: the names are deterministic
    assert _folders(out / "gs/b/events", "*.jsonl.gz") == first
    later = _folders(out / "gs/b/events_p/2025/09/17", "*.parquet.snappy")
    assert later == _folders(out / "gs/b/events_p/2025/09/15", "*.parquet.snappy")
    for dest in ("events", "events_p"):
        result = dpexport("--local-root", out, "verify", f"gs://b/{dest}/")
        assert result.code == 0, result.out + result.err


def test_plan_names_the_folders_the_run_writes(base: Path) -> None:
    out = base / "out"
    planned = dpexport("-c", base / "dpexport.yaml", "--local-root", out, "plan", "--at", AT,
                       "--json", "--table", "events")  # fmt: skip
    assert planned.code == 0, planned.err
    run_ok(base / "dpexport.yaml", out, AT, "--table", "events")
    (item,) = json.loads(planned.out)
    written = {p.parent for p in (out / "gs/b/events").rglob("*.jsonl.gz")}
    assert sorted(item["folder_list"]) == sorted(
        "gs://b/" + p.relative_to(out / "gs/b").as_posix() + "/" for p in written
    )


def test_csv_column_names_holding_newlines_export_and_read_back(base: Path) -> None:
    out = base / "out"
    run_ok(base / "dpexport.yaml", out, AT, "--table", "wide")
    (path,) = (out / "gs/b/wide").rglob("*.csv")
    assert path.read_bytes().startswith(b'"a\nb","c\r\nd","e\\"f","g,h","i\\\\j",plain\n')
    con = duckdb.connect()
    rel = con.execute(
        "SELECT * FROM read_csv(?, header=true, delim=',', quote='\"', escape='\\', "
        "nullstr='', allow_quoted_nulls=false)",
        [str(path)],
    )
    assert [d[0] for d in rel.description] == NAMES
    assert rel.fetchall() == [tuple(range(len(NAMES)))] * 3
    con.close()
    result = dpexport("--local-root", out, "verify", "gs://b/wide/")
    assert result.code == 0, result.out + result.err
    assert "3 row(s)" in result.out


def test_long_partition_values_when_duckdb_writes(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        "CREATE TABLE ds.events AS SELECT i AS id, TIMESTAMPTZ '2025-09-15 00:00:00+00' "
        "AS event_time, CASE WHEN i % 2 = 0 THEN repeat('x', 300) ELSE 'short' END AS kind "
        "FROM range(6000) t(i)"
    )
    con.close()
    cfg = tmp_path / "dpexport.yaml"
    cfg.write_text(CONFIG.split("  - source: ds.events_p")[0].replace("JSONL", "PARQUET")
                   .replace("GZIP", "ZSTD"), encoding="utf-8")  # fmt: skip
    assert plan_paths(cfg, tmp_path / "out", AT)["ds.events"].startswith("DuckDB COPY")
    run_ok(cfg, tmp_path / "out", AT)
    # the long value's folder is named as the streamed path names it, and holds its rows
    from dpexport.storage.layout import safe_segment

    day = next((tmp_path / "out" / "gs").rglob("2025/09/15"))
    con = duckdb.connect()
    count = "SELECT count(*) FROM read_parquet('{}/*.parquet.zst')"
    counts = {p.name: con.execute(count.format(p)).fetchall() for p in day.iterdir() if p.is_dir()}
    assert counts == {safe_segment("x" * 300): [(3000,)], "short": [(3000,)]}
    result = dpexport("--local-root", tmp_path / "out", "verify", "gs://b/")
    assert result.code == 0, result.out + result.err
