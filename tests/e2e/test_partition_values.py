"""Distinct sub-partition values land in distinct folders, on every write path.

Issue 15, case 8: NULL and the string ``'_null_'`` shared ``_null_/``, the empty
string and ``'\\x00'`` shared ``%00/``. The table below holds those values and the
names the encoding itself uses (``_empty_``, ``%00``, ``%5Fnull_``...), and is
exported streamed (JSONL, rows routed in Python) and written by DuckDB (Parquet,
``PARTITION_BY`` on hex-encoded keys): each value gets its own folder holding exactly
its rows, both paths make the same folders, and ``dpexport verify`` passes.

A second day holds only NULL and ``'\\x00'``, which sort next to each other, so the
streamed path's router sees them in one batch and must still tell them apart.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from dpexport.formats import read_file
from tests.e2e.cli import dpexport, plan_paths, run_ok

AT = "2025-09-17T06:00:00Z"
OUT = Path("gs/bench/out")
PARTITIONED = "partitioning: {field: event_time, granularity: daily, secondary: kind}"

CONFIG = f"""\
project: bench
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: gs://bench}}
exports:
  - source: ds.events
    destination: gs://bench/out/streamed/
    format: JSONL
    compression: NONE
    mode: FULL_REFRESH
    {PARTITIONED}
  - source: ds.events_b
    destination: gs://bench/out/copied/
    format: PARQUET
    compression: ZSTD
    mode: FULL_REFRESH
    {PARTITIONED}
"""

#: each value and the folder it must land in (README, "Where files land")
FOLDERS: dict[str | None, str] = {
    None: "_null_",
    "_null_": "%5Fnull_",
    "": "_empty_",
    "\x00": "%00",
    "_empty_": "%5Fempty_",
    "%00": "%2500",
    "%5Fnull_": "%255Fnull_",
    ".": "%2E",
    "..": "%2E%2E",
    "plain": "plain",
}
KINDS = list(FOLDERS)
DAY1 = 60_000
DAY2 = 6_000

EVENTS = """
CREATE TABLE ds.events AS
SELECT
    i AS id,
    TIMESTAMPTZ '2025-09-15 00:00:00+00' + to_microseconds((i % 86400) * 1000000) AS event_time,
    kinds[1 + i % 10] AS kind,
    md5(i::VARCHAR) AS digest
FROM range(60000) t(i), (SELECT ? AS kinds)
UNION ALL
SELECT
    i,
    TIMESTAMPTZ '2025-09-16 00:00:00+00' + to_microseconds((i % 86400) * 1000000),
    CASE WHEN (i // 500) % 2 = 0 THEN NULL ELSE chr(0) END,
    md5(i::VARCHAR)
FROM range(60000, 66000) t(i)
"""


def _expected() -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for i in range(DAY1):
        out["2025/09/15/" + FOLDERS[KINDS[i % 10]]].append(i)
    for i in range(DAY1, DAY1 + DAY2):
        out["2025/09/16/" + ("_null_" if (i // 500) % 2 == 0 else "%00")].append(i)
    return dict(out)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pvalues")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(EVENTS, [KINDS])
    con.execute("CREATE TABLE ds.events_b AS SELECT * FROM ds.events")
    con.close()
    (root / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    return root


def _layout(root: Path, name: str) -> dict[str, list[int]]:
    """Ids by folder, every data file listed by its folder's manifest, and each folder
    holding rows of one kind only: the kind its name encodes."""
    base = root / OUT / name
    by_folder: dict[str, list[int]] = defaultdict(list)
    listed: set[Path] = set()
    for success in base.rglob("SUCCESS"):
        top = success.parent
        manifest = json.loads((top / json.loads(success.read_text())["manifest"]).read_text())
        for entry in manifest["files"]:
            path = top / entry["name"]
            listed.add(path)
            fmt, codec = ("PARQUET", "ZSTD") if name == "copied" else ("JSONL", "NONE")
            table = read_file(path, fmt, codec)
            folder = path.parent.relative_to(base).as_posix()
            kinds = set(table["kind"].to_pylist())
            assert len(kinds) == 1, (folder, kinds)
            assert folder.rsplit("/", 1)[-1] == FOLDERS[kinds.pop()], folder
            by_folder[folder] += table["id"].to_pylist()
    data = {p for p in base.rglob("*.*") if p.suffix in (".zst", ".jsonl")}
    assert data == listed
    return {k: sorted(v) for k, v in by_folder.items()}


@pytest.fixture(scope="module")
def exported(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pvalues-out")
    paths = plan_paths(base / "dpexport.yaml", root, AT)
    assert paths["ds.events_b"] == "DuckDB COPY (DuckDB writes the Parquet files)"
    assert paths["ds.events"].startswith("streamed"), paths["ds.events"]
    run_ok(base / "dpexport.yaml", root, AT)
    return root


def test_expected_layout_has_a_folder_per_value() -> None:
    assert len(_expected()) == len(KINDS) + 2
    assert len(set(FOLDERS.values())) == len(FOLDERS)


def test_streamed_path_gives_each_value_its_own_folder(exported: Path) -> None:
    assert _layout(exported, "streamed") == _expected()


def test_duckdb_path_gives_each_value_its_own_folder(exported: Path) -> None:
    assert _layout(exported, "copied") == _expected()
    files = list((exported / OUT / "copied").rglob("*.parquet.zst"))
    assert {pq.ParquetFile(f).metadata.created_by.split(" ")[0] for f in files} == {"DuckDB"}


@pytest.mark.parametrize("name", ["streamed", "copied"])
def test_verify_passes(exported: Path, name: str) -> None:
    ok = dpexport("--local-root", exported, "verify", f"gs://bench/out/{name}/")
    assert ok.code == 0, ok.out + ok.err


def test_plan_lists_the_folders_the_run_writes(base: Path, exported: Path, tmp_path: Path) -> None:
    """``plan`` names every folder the run then wrote (12 here, under its limit of 20),
    encoded by the run's own rule, on both write paths (issue 17)."""
    result = dpexport(
        "-c", base / "dpexport.yaml", "--local-root", tmp_path, "plan", "--at", AT, "--json"
    )  # fmt: skip
    assert result.code == 0, result.err
    for p in json.loads(result.out):
        name = "streamed" if p["table"] == "ds.events" else "copied"
        written = {f"gs://bench/out/{name}/{folder}/" for folder in _layout(exported, name)}
        assert len(written) == 12
        assert sorted(p["folder_list"]) == sorted(written)
        assert p["folders"] == 12


def test_plan_lists_twenty_folders_then_a_count(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        "CREATE TABLE ds.events AS SELECT i AS id, TIMESTAMPTZ '2025-09-16 00:00:00+00' "
        "+ to_microseconds(i * 1000000) AS event_time, 'k' || (i % 25) AS kind "
        "FROM range(1000) t(i)"
    )
    con.close()
    config = CONFIG.split("  - source: ds.events_b")[0]
    (tmp_path / "dpexport.yaml").write_text(config, encoding="utf-8")
    args = ("-c", tmp_path / "dpexport.yaml", "--local-root", tmp_path / "out", "plan")
    result = dpexport(*args, "--at", AT)
    assert result.code == 0, result.err
    listed = [line.split()[-1] for line in result.out.splitlines() if "folder  " in line]
    kinds = sorted(f"k{i}" for i in range(25))
    assert listed == [f"gs://bench/out/streamed/2025/09/16/{k}/" for k in kinds[:20]] + ["more"]
    assert "... and 5 more" in result.out
