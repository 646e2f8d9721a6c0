"""``dpexport lifecycle archive`` (CONTRACT §12, spec 1.4 and 4.1): the demo's
``diagnostic_sessions`` (``archive_after: 90 days``) is exported once into eight daily
folders; folders older than 90 days are copied to ``buckets.cold_storage`` (a local
folder, or moto's S3), verified there, and removed from the source. A process killed at
any step leaves every folder whole and committed in at least one place, never a
``SUCCESS`` without its files, and the next run finishes the move."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dpexport.errors import NotFound
from dpexport.storage.base import Store
from dpexport.storage.uri import StoreResolver
from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport

AT = "2025-09-16T12:00:00Z"
#: the folders are 2025/09/09 .. 2025/09/16: the first four end 90 days before this
HALF = "2025-12-12T00:00:00Z"
LATER = "2026-03-01T00:00:00Z"
TABLE = "prod/diagnosticpro_prod/diagnostic_sessions/"
EXPORTS = "gs/diagnosticpro-exports/"
COLD = "gs/diagnosticpro-cold-storage/"
COLD_URI = "gs://diagnosticpro-cold-storage/" + TABLE

Folders = dict[str, dict[str, tuple[str, int]]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dpexport.demo import example_config_text
    from dpexport.demo.warehouse import create_demo_warehouse

    base = tmp_path_factory.mktemp("archive")
    create_demo_warehouse(base / "warehouse.duckdb", 200)
    (base / "dpexport.yaml").write_text(example_config_text(), encoding="utf-8")
    run = ["run", "--at", AT, "--table", "diagnostic_sessions"]
    result = dpexport("-c", base / "dpexport.yaml", "--local-root", base / "local", *run)
    assert result.code == 0, result.err
    return base


@pytest.fixture
def base(exported: Path, tmp_path: Path) -> Path:
    """A fresh copy of the export: its config and its local buckets."""
    shutil.copytree(exported / "local", tmp_path / "local")
    shutil.copyfile(exported / "dpexport.yaml", tmp_path / "dpexport.yaml")
    return tmp_path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def committed(store: Store, prefix: str) -> tuple[Folders, list[str]]:
    """The folders under ``prefix`` whose SUCCESS holds, whole: file -> (sha256, rows),
    each file's bytes matching its manifest; and the folders whose SUCCESS does not."""
    whole: Folders = {}
    broken: list[str] = []
    for obj in store.list(prefix):
        rel = obj.key[len(prefix) :]
        if not obj.key.endswith("SUCCESS") or rel.startswith("_state/"):
            continue
        folder = obj.key[: -len("SUCCESS")]
        files: dict[str, tuple[str, int]] = {}
        try:
            for name in json.loads(store.get(obj.key))["manifests"]:
                for entry in json.loads(store.get(folder + name))["files"]:
                    digest = _sha(store.get(folder + entry["name"]))
                    assert "sha256:" + digest == entry["checksum"], (folder, entry)
                    files[entry["name"]] = (digest, entry["rows"])
        except NotFound:
            broken.append(folder[len(prefix) :])
            continue
        whole[folder[len(prefix) :]] = files
    return whole, broken


def _local(base: Path) -> tuple[Store, Store]:
    resolve = StoreResolver(base / "local").resolve
    return resolve("gs://diagnosticpro-exports/")[0], resolve("gs://diagnosticpro-cold-storage/")[0]


def _archive(base: Path, *args: str, code: int = 0) -> list[dict[str, Any]]:
    result = dpexport(
        "-c", base / "dpexport.yaml", "--local-root", base / "local", "lifecycle", "archive",
        "--json", *args,
    )  # fmt: skip
    assert result.code == code, result.out + result.err
    docs: list[dict[str, Any]] = json.loads(result.out)
    return docs


def test_archive_moves_folders_older_than_archive_after(base: Path) -> None:
    src, cold = _local(base)
    original, _ = committed(src, TABLE)
    days = sorted(original)
    assert len(days) == 8 and days[0] == "2025/09/09/"
    assert sum(rows for f in original.values() for _, rows in f.values()) > 0

    [dry] = _archive(base, "--dry-run", "--now", HALF)
    assert [f["status"] for f in dry["folders"]] == ["would move"] * 4
    assert committed(src, TABLE)[0] == original and not list(cold.list(""))

    [report] = _archive(base, "--now", HALF)
    assert report["moved"] == 4 and report["held"] == 0 and report["mismatches"] == []
    assert report["target"] == COLD_URI
    moved, _ = committed(cold, TABLE)
    left, _ = committed(src, TABLE)
    assert sorted(moved) == days[:4] and sorted(left) == days[4:]
    assert {**moved, **left} == original  # the same bytes, the same rows
    for day in days[:4]:  # nothing of a moved folder stays at the source
        assert not list(src.list(TABLE + day))
    assert not list(src.list("_state/archive/"))

    [again] = _archive(base, "--now", HALF)
    assert again["moved"] == 0 and again["copied"] == 0
    [rest] = _archive(base, "--now", LATER)
    assert rest["moved"] == 4
    assert committed(cold, TABLE)[0] == original and committed(src, TABLE)[0] == {}
    check = dpexport("--local-root", base / "local", "verify", COLD_URI)
    assert check.code == 0, check.out + check.err
    assert "8 manifest(s)" in check.out


def test_retention_keeps_the_folders_at_the_source_and_says_so(base: Path) -> None:
    config = base / "dpexport.yaml"
    text = config.read_text(encoding="utf-8")
    marker = '    archive_after: "90 days"\n'
    config.write_text(text.replace(marker, marker + '    retention: "2190 days"\n'))
    src, cold = _local(base)
    original, _ = committed(src, TABLE)
    result = dpexport(
        "-c", config, "--local-root", base / "local", "lifecycle", "archive", "--now", LATER
    )
    assert result.code == 0, result.err
    held = [line for line in result.out.splitlines() if line.startswith("held ")]
    assert len(held) == 8
    assert "retention 2190 days" in held[0] and "not deleted" in held[0]
    assert "8 held by retention" in result.out
    assert committed(src, TABLE)[0] == original and not list(cold.list(""))


def test_a_table_with_archive_after_and_no_cold_bucket_is_a_config_error(base: Path) -> None:
    config = base / "dpexport.yaml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("  cold_storage: gs://diagnosticpro-cold-storage\n", ""))
    result = dpexport("-c", config, "--local-root", base / "local", "lifecycle", "archive")
    assert result.code == 2
    assert "buckets.cold_storage" in result.err and "diagnostic_sessions" in result.err
    assert committed(_local(base)[0], TABLE)[0]  # nothing moved


# -- killed at a step ---------------------------------------------------------------------
#: (step, occurrence): part-way through the first copy, after the first and the third
#: target SUCCESS, at a journal, right after a source SUCCESS was deleted, after some data
#: files were, after a whole move
KILLS = [
    ("copied", 5),
    ("committed", 1),
    ("committed", 3),
    ("journal", 2),
    ("deleted", 1),
    ("deleted", 6),
    ("finished", 3),
]


def _kill(config: Path, local_root: str, now: str, step: str, nth: int) -> None:
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "tests.e2e.archive_child", str(config), local_root, now, step,
         str(nth)],
        cwd=repo, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -9, (step, nth, proc.returncode, proc.stdout, proc.stderr)


def _assert_whole_somewhere(
    original: Folders, src: Store, src_prefix: str, cold: Store, cold_prefix: str
) -> None:
    left, broken_src = committed(src, src_prefix)
    moved, broken_cold = committed(cold, cold_prefix)
    assert broken_src == [] and broken_cold == []  # no SUCCESS without its files
    for folder, files in original.items():
        assert folder in left or folder in moved, folder  # every row in one place at least
        assert left.get(folder, files) == files and moved.get(folder, files) == files


@pytest.mark.parametrize(("step", "nth"), KILLS)
def test_a_killed_archive_loses_nothing_and_the_next_run_finishes(
    base: Path, step: str, nth: int
) -> None:
    src, cold = _local(base)
    original, _ = committed(src, TABLE)
    _kill(base / "dpexport.yaml", str(base / "local"), LATER, step, nth)
    _assert_whole_somewhere(original, src, TABLE, cold, TABLE)

    [report] = _archive(base, "--now", LATER)
    assert report["errors"] == [] and report["mismatches"] == []
    assert committed(cold, TABLE)[0] == original
    assert [o.key for o in src.list(TABLE)] == []
    assert not list(src.list("_state/archive/"))
    check = dpexport("--local-root", base / "local", "verify", COLD_URI)
    assert check.code == 0, check.out + check.err


@pytest.mark.parametrize(("step", "nth"), [("copied", 20), ("committed", 2), ("deleted", 3)])
def test_a_killed_archive_to_s3_loses_nothing_and_the_next_run_finishes(
    base: Path, step: str, nth: int
) -> None:
    """The source a local folder, the cold bucket moto's S3."""
    server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    import boto3

    bucket = unique_bucket("cold")
    s3 = boto3.session.Session().client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.close()
    source = base / "local" / EXPORTS
    config = base / "dpexport.yaml"
    text = config.read_text(encoding="utf-8").replace("gs://diagnosticpro-exports", str(source))
    text = text.replace("gs://diagnosticpro-cold-storage", f"s3://{bucket}/cold")
    config.write_text(text, encoding="utf-8")
    src = StoreResolver().resolve(str(source / TABLE))[0]
    cold, cold_prefix = StoreResolver().resolve(f"s3://{bucket}/cold/")
    original, _ = committed(src, "")
    assert len(original) == 8

    _kill(config, "-", LATER, step, nth)
    _assert_whole_somewhere(original, src, "", cold, cold_prefix)
    result = dpexport("-c", config, "lifecycle", "archive", "--json", "--now", LATER)
    assert result.code == 0, result.out + result.err
    assert committed(cold, cold_prefix)[0] == original
    assert committed(src, "")[0] == {} and not list(src.list("_state/archive/"))
    check = dpexport("verify", f"s3://{bucket}/cold/")
    assert check.code == 0, check.out + check.err
    assert "8 manifest(s)" in check.out


# -- the scheduler, a concurrent commit, where tables go ------------------------------------
def test_the_scheduler_archives_once_a_utc_day(base: Path, exported: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from dpexport.config import load_config
    from dpexport.engines import open_engine
    from dpexport.flow.context import RunOptions
    from dpexport.flow.runner import run_exports
    from dpexport.ops.scheduler import Job, Scheduler, Tick

    shutil.copyfile(exported / "warehouse.duckdb", base / "warehouse.duckdb")
    config = load_config(base / "dpexport.yaml")
    ticks: list[Tick] = []
    scheduler = Scheduler(
        config,
        [Job("diagnostic_sessions", "0 */6 * * *", timedelta(minutes=1))],
        open_engine=lambda who: open_engine(config.warehouse, base_dir=base),
        run=run_exports,
        options=RunOptions(local_root=base / "local"),
        on_tick=ticks.append,
    )
    last: dict[str, datetime] = {}
    for at in ("2025-12-12T00:10", "2025-12-12T06:10", "2026-03-01T00:10", "2026-03-02T00:10"):
        scheduler.run_due(datetime.fromisoformat(at).replace(tzinfo=UTC), last)
    scheduler.close()
    assert [t.at.hour for t in ticks] == [0, 6, 0, 0]
    moved = [[r.to_json()["moved"] for r in t.archived] for t in ticks]
    assert moved == [[4], [], [4], [0]]  # the day's first fire time; none at 06:00
    records = [[r for r in t.records() if r.get("archive")] for t in ticks]
    assert [len(r) for r in records] == [1, 0, 1, 0]  # a record when something moved
    assert records[0][0]["status"] == "SUCCESS" and records[0][0]["moved"] == 4
    src, cold = _local(base)
    assert len(committed(cold, TABLE)[0]) == 8 and committed(src, TABLE)[0] == {}


def test_a_folder_committed_into_during_its_copy_stays_until_the_next_run(base: Path) -> None:
    from datetime import UTC, datetime

    from dpexport.config import load_config
    from dpexport.ops.archive import archive

    src, cold = _local(base)
    original, _ = committed(src, TABLE)
    first = TABLE + "2025/09/09/SUCCESS"
    marker = json.loads(src.get(first))

    seen: list[str] = []

    def commit_meanwhile(step: str) -> None:  # an export re-commits the first folder
        if step == "committed" and not seen:
            seen.append(step)
            src.put_bytes(first, json.dumps({**marker, "again": True}).encode())

    config = load_config(base / "dpexport.yaml")
    now = datetime(2025, 12, 10, tzinfo=UTC)  # only 2025/09/09 and 2025/09/10 are due
    [report] = archive(config, now=now, local_root=base / "local", on_step=commit_meanwhile)
    assert [(f.folder.rsplit("/", 4)[-4:-1], f.status) for f in report.folders] == [
        (["2025", "09", "09"], "changed"),
        (["2025", "09", "10"], "moved"),
    ]
    assert "2025/09/09/" in committed(src, TABLE)[0]  # kept whole at the source
    [again] = archive(config, now=now, local_root=base / "local")
    assert [f.status for f in again.folders] == ["moved"]
    assert committed(cold, TABLE)[0] == {k: original[k] for k in ("2025/09/09/", "2025/09/10/")}
    assert json.loads(cold.get(first))["again"] is True  # the newer commit went to cold


def test_tables_go_to_the_spec_1_4_cold_folder_their_compliance_names(base: Path) -> None:
    import dataclasses

    from dpexport.config import load_config
    from dpexport.ops.archive import cold_destination

    config = load_config(base / "dpexport.yaml")
    cold = "gs://cold"
    billing = config.table("billing_transactions")
    assert cold_destination(cold, billing, "p/b/") == "gs://cold/financial-records/p/b/"
    gdpr = dataclasses.replace(billing, compliance=("GDPR",))
    assert cold_destination(cold, gdpr, "p/b/") == "gs://cold/compliance-data/p/b/"
    sensors = config.table("sensor_telemetry")
    assert cold_destination(cold, sensors, "p/s/") == "gs://cold/historical-telemetry/p/s/"
    sessions = config.table("diagnostic_sessions")
    assert cold_destination(cold + "/", sessions, "p/d/") == "gs://cold/p/d/"
