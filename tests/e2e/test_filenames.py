"""Spec 3.3 ``filenames``: ``pattern`` names the data files and ``metadata_sidecar`` their
sidecars, on both write paths (streamed, and DuckDB's own ``COPY``), with the ``_NNN``
of rolled files after ``{uuid}``; the manifests list those names and say the patterns,
``verify`` passes, and a FULL_REFRESH rerun retires the previous snapshot's files and
sidecars by the names they were written with. ``check`` refuses a pattern that cannot
work, at its YAML path with the nearest valid one (issue 17)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.e2e.cli import dpexport, plan_paths, run_ok

AT = "2025-09-17T06:00:00Z"
NEXT_DAY = "2025-09-18T06:00:00Z"
PATTERN = "{yyyymmdd}-{entity}-{uuid}.{format}.{compression}"
SIDECAR = "{filename}.meta.json"
OUT = Path("gs/b/out")

CONFIG = f"""\
project: p
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: gs://b}}
filenames:
  pattern: "{PATTERN}"
  metadata_sidecar: "{SIDECAR}"
exports:
  - source: ds.events
    destination: gs://b/out/events/
    format: JSONL
    compression: GZIP
    mode: FULL_REFRESH
    max_file_size: 1MB
  - source: ds.readings
    destination: gs://b/out/readings/
    format: PARQUET
    compression: ZSTD
    mode: FULL_REFRESH
    max_file_size: 1MB
"""

#: table -> (the ``plan`` path it must take, the files' extension and codec suffix)
TABLES = {
    "events": ("streamed", "jsonl.gz"),
    "readings": ("DuckDB COPY", "parquet.zst"),
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("filenames")
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        "CREATE TABLE ds.events AS SELECT i AS id, md5(i::VARCHAR) AS digest, "
        "md5((i * 7)::VARCHAR) AS other FROM range(250000) t(i)"
    )
    con.execute(
        "CREATE TABLE ds.readings AS SELECT i AS id, md5(i::VARCHAR) AS digest, "
        "(i * 0.5)::DOUBLE AS value FROM range(200000) t(i)"
    )
    con.close()
    (root / "dpexport.yaml").write_text(CONFIG, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def exported(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("filenames-out")
    paths = plan_paths(base / "dpexport.yaml", root, AT)
    for table, (path, _) in TABLES.items():
        assert paths[f"ds.{table}"].startswith(path), paths
    run_ok(base / "dpexport.yaml", root, AT)
    return root


def _manifest(folder: Path) -> dict[str, Any]:
    success = json.loads((folder / "SUCCESS").read_text())
    doc: dict[str, Any] = json.loads((folder / success["manifest"]).read_text())
    return doc


def _expected_names(manifest: dict[str, Any], entity: str, suffix: str) -> list[str]:
    """The names ``PATTERN`` gives this export's files: its start day and uuid8 from the
    export id (``exp_{yyyymmdd}_{HHMMSS}_{uuid8}``), ``_NNN`` after the uuid when rolled."""
    _, day, _, uuid8 = manifest["export_id"].split("_")
    count = len(manifest["files"])
    if count == 1:
        return [f"{day}-{entity}-{uuid8}.{suffix}"]
    return [f"{day}-{entity}-{uuid8}_{i:03d}.{suffix}" for i in range(1, count + 1)]


@pytest.mark.parametrize("table", sorted(TABLES))
def test_files_and_sidecars_follow_the_patterns(exported: Path, table: str) -> None:
    folder = exported / OUT / table / "2025/09/17"
    manifest = _manifest(folder)
    suffix = TABLES[table][1]
    names = _expected_names(manifest, table, suffix)
    assert len(names) >= 2, "rolled files: the _NNN sequence is part of the test"
    assert [f["name"] for f in manifest["files"]] == names
    assert manifest["filenames"] == {"pattern": PATTERN, "metadata_sidecar": SIDECAR}
    on_disk = {p.name for p in folder.iterdir()}
    sidecars = {n + ".meta.json" for n in names}
    assert on_disk == {*names, *sidecars, "SUCCESS", manifest_name(folder)}
    for entry in manifest["files"]:
        side = json.loads((folder / (entry["name"] + ".meta.json")).read_text())
        assert side["name"] == entry["name"]
        assert side["checksum"] == entry["checksum"] and side["rows"] == entry["rows"]
    assert not list((exported / OUT).rglob("*.metadata.json"))
    assert not re.search(r"_\d{8}_\d{6}_", " ".join(names)), "not the default pattern"


def manifest_name(folder: Path) -> str:
    return str(json.loads((folder / "SUCCESS").read_text())["manifest"])


@pytest.mark.parametrize("table", sorted(TABLES))
def test_verify_passes_and_sees_a_stray_file(exported: Path, table: str) -> None:
    uri = f"gs://b/out/{table}/"
    ok = dpexport("--local-root", exported, "verify", uri)
    assert ok.code == 0, ok.out + ok.err
    # the sidecars are not taken for unlisted data files; a stray copy of a file is
    folder = exported / OUT / table / "2025/09/17"
    first = _manifest(folder)["files"][0]["name"]
    stray = folder / first.replace("-", "+", 1)
    stray.write_bytes((folder / first).read_bytes())
    try:
        bad = dpexport("--local-root", exported, "verify", uri)
        assert bad.code != 0, bad.out
        assert "data file not listed in any manifest" in bad.out + bad.err
        assert ".meta.json" not in "".join(
            line for line in (bad.out + bad.err).splitlines() if "not listed" in line
        )
    finally:
        stray.unlink()


def test_a_rerun_retires_the_previous_files_and_sidecars(base: Path, tmp_path: Path) -> None:
    run_ok(base / "dpexport.yaml", tmp_path, AT, "--table", "ds.events")
    old = tmp_path / OUT / "events" / "2025/09/17"
    assert any(p.name.endswith(".meta.json") for p in old.iterdir())
    run_ok(base / "dpexport.yaml", tmp_path, NEXT_DAY, "--table", "ds.events")
    assert not old.exists() or not any(old.iterdir()), sorted(p.name for p in old.iterdir())
    new = tmp_path / OUT / "events" / "2025/09/18"
    manifest = _manifest(new)
    assert [f["name"] for f in manifest["files"]] == _expected_names(manifest, "events", "jsonl.gz")
    ok = dpexport("--local-root", tmp_path, "verify", "gs://b/out/events/")
    assert ok.code == 0, ok.out + ok.err


INCREMENTAL = """\
  - source: ds.items
    destination: gs://b/out/items/
    format: PARQUET
    compression: SNAPPY
    mode: INCREMENTAL
    change_column: updated_at
    merge_key: id
"""


def test_compact_reads_and_writes_the_configured_names(tmp_path: Path) -> None:
    """``compact`` reads the increments by their manifests and writes its snapshot by the
    patterns; a second compaction retires the first snapshot's files and sidecars."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        "CREATE TABLE ds.items AS SELECT i % 100 AS id, i AS version, TIMESTAMPTZ "
        "'2025-09-16 00:00:00+00' + to_microseconds(i * 1000000) AS updated_at "
        "FROM range(1000) t(i)"
    )
    con.close()
    config = tmp_path / "dpexport.yaml"
    config.write_text(CONFIG.split("  - source:")[0] + INCREMENTAL, encoding="utf-8")
    out = tmp_path / "out"
    run_ok(config, out, AT)
    for at in (AT, NEXT_DAY):
        args = ("-c", config, "--local-root", out, "compact", "--table", "items", "--at", at)
        result = dpexport(*args, "--json")
        assert result.code == 0, result.out + result.err
    snapshot = out / OUT / "items__snapshot"
    [folder] = {p.parent for p in snapshot.rglob("SUCCESS")}
    assert folder.relative_to(snapshot).as_posix() == "2025/09/18"
    manifest = _manifest(folder)
    names = _expected_names(manifest, "items", "parquet.snappy")
    on_disk = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*.*"))
    expected = [f"2025/09/18/{n}" for n in [*names, *(n + ".meta.json" for n in names)]]
    assert on_disk == sorted([*expected, f"2025/09/18/{manifest_name(folder)}"])
    assert sum(f["rows"] for f in manifest["files"]) == 100
    ok = dpexport("--local-root", out, "verify", "gs://b/out/items/")
    assert ok.code == 0, ok.out + ok.err


#: case -> (filenames block, YAML path, text that must follow in the message)
REFUSED: dict[str, tuple[str, str, str]] = {
    "unknown placeholder": (
        'pattern: "{entity}_{uuid}.{fromat}.{compression}"',
        "filenames.pattern",
        "unknown placeholder {fromat}",
    ),
    "no uuid": (
        'pattern: "{entity}_{yyyymmdd}_{HHMMSS}.{format}.{compression}"',
        "filenames.pattern",
        "did you mean '{entity}_{yyyymmdd}_{HHMMSS}_{uuid}.{format}.{compression}'?",
    ),
    "no entity": (
        'pattern: "{yyyymmdd}_{uuid}.{format}"',
        "filenames.pattern",
        "did you mean '{entity}_{yyyymmdd}_{uuid}.{format}'?",
    ),
    "a slash": (
        'pattern: "{entity}/{uuid}.{format}"',
        "filenames.pattern",
        "did you mean '{entity}_{uuid}.{format}'?",
    ),
    "sidecar without filename": (
        'metadata_sidecar: "metadata.json"',
        "filenames.metadata_sidecar",
        "did you mean '{filename}.metadata.json'?",
    ),
    "sidecar that is the file": (
        'metadata_sidecar: "{filename}"',
        "filenames.metadata_sidecar",
        "the sidecar would overwrite the data",
    ),
    "sidecar that reads as a data file": (
        'metadata_sidecar: "{filename}.enc"',
        "filenames.metadata_sidecar",
        "reads as a data file",
    ),
}


def _refused_config(tmp_path: Path, block: str) -> Path:
    head, tail = CONFIG.split("filenames:")[0], CONFIG.split("\nexports:\n", 1)[1]
    text = head + "filenames:\n  " + block + "\nexports:\n" + tail
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    return config


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_check_refuses_a_pattern_that_cannot_work(case: str, tmp_path: Path) -> None:
    block, path, hint = REFUSED[case]
    config = _refused_config(tmp_path, block)
    root = tmp_path / "out"
    for command in ("check", "run"):
        result = dpexport("-c", config, "--local-root", root, command)
        assert result.code == 2, (case, command, result.out, result.err)
        assert f"{path}: " in result.err, (case, result.err)
        assert hint in result.err, (case, result.err)
        assert "expected " in result.err, (case, result.err)
        assert not root.exists() or not any(root.rglob("*")), case


def test_check_names_every_pattern_problem_in_one_pass(tmp_path: Path) -> None:
    config = _refused_config(tmp_path, 'pattern: "{table}/{yyyymmdd}"\n  metadata_sidecar: "x"')
    result = dpexport("-c", config, "--local-root", tmp_path / "out", "check")
    assert result.code == 2, result.out + result.err
    for text in (
        "unknown placeholder {table}",
        "has no {uuid}",
        "has no {entity}",
        "cannot hold '/'",
        "has no {filename}",
    ):
        assert text in result.err, (text, result.err)
