"""Every other way an export stops, beside SIGKILL (``test_crash``): Ctrl-C and SIGTERM
at each commit step, once or twice, and a write that fails at each step after the
commit point. Before the commit point the export rolls back and exits 130 with nothing
marked FAILURE; after it, the export only moves forward. Whatever the stop, the rerun
leaves every source row published exactly once and ``verify`` clean."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.e2e.cli import Result, dpexport, stopped, warehouse_sql

PROD = Path("gs/diagnosticpro-exports/prod/diagnosticpro_prod")
BUCKET = Path("gs/diagnosticpro-exports")
FIRST, SECOND = "2025-09-16T14:30:22Z", "2025-09-17T14:30:22Z"
POSTS, CODES = "reddit_diagnostic_posts", "dtc_code_definitions"


def _stopped(base: Path, hook: list[str], table: str, at: str) -> Result:
    """``dpexport run --json`` of one table through ``stop_child`` with ``hook``."""
    cli = ["-c", str(base / "dpexport.yaml"), "--local-root", str(base / "out")]
    return stopped(hook, *cli, "run", "--table", table, "--at", at, "--json")


def _run(base: Path, table: str, at: str) -> Result:
    return dpexport(
        "-c", base / "dpexport.yaml", "--local-root", base / "out", "run", "--table", table,
        "--at", at, "--json",
    )  # fmt: skip


def _published(base: Path, table: str) -> list[dict[str, object]]:
    """The rows a consumer reads: those of the manifests every SUCCESS lists."""
    rows: list[dict[str, object]] = []
    for success in sorted((base / "out" / PROD / table).rglob("SUCCESS")):
        for name in json.loads(success.read_text())["manifests"]:
            for entry in json.loads((success.parent / name).read_text())["files"]:
                rows += pq.read_table(success.parent / entry["name"]).to_pylist()
    return rows


def _staging_files(base: Path) -> list[Path]:
    staging = base / "out" / BUCKET / "_staging"
    return [p for p in staging.rglob("*") if p.is_file()] if staging.exists() else []


def _exactly_once(base: Path, table: str, key: str) -> None:
    ids = [r[key] for r in _published(base, table)]
    source = {r[0] for r in warehouse_sql(base, f"SELECT {key} FROM diagnosticpro_prod.{table}")}
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} row(s) published twice"
    assert set(ids) == source, f"{len(source - set(ids))} row(s) lost"
    uri = f"gs://diagnosticpro-exports/prod/diagnosticpro_prod/{table}/"
    check = dpexport("--local-root", base / "out", "verify", uri)
    assert check.code == 0, check.out + check.err
    assert _staging_files(base) == []


@pytest.fixture
def posts(demo_dir: Path) -> Path:
    """The demo with the posts exported once, then one new post: the next run's slice."""
    first = _run(demo_dir, POSTS, FIRST)
    assert first.code == 0, first.err
    warehouse_sql(
        demo_dir,
        f"INSERT INTO diagnosticpro_prod.{POSTS} SELECT * REPLACE ('new_post_1' AS post_id, "
        f"DATE '2025-09-17' AS created_date, TIMESTAMP '2025-09-17 08:00:00' AS created_at) "
        f"FROM diagnosticpro_prod.{POSTS} LIMIT 1",
    )
    return demo_dir


BEFORE_COMMIT = [("batch", 1), ("staged", 1)]
AFTER_COMMIT = [("journal", 1), ("manifest", 1), ("move", 1), ("marker", 1), ("watermark", 1)]
AFTER_COMMIT += [("clean", 1)]


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(("step", "nth"), BEFORE_COMMIT)
def test_signal_before_the_commit_point_rolls_back(
    posts: Path, signame: str, step: str, nth: int
) -> None:
    stopped = _stopped(posts, ["signal", signame, step, str(nth), "1"], POSTS, SECOND)
    assert stopped.code == 130, stopped.err
    assert "interrupted" in stopped.err
    folder = posts / "out" / PROD / POSTS
    assert not list(folder.rglob("FAILURE")), "a stop is not a failure"
    assert not (folder / "2025/09/17").exists(), "nothing of the stopped export is visible"
    assert _staging_files(posts) == []
    assert not (posts / "out" / BUCKET / "dead-letter-queue").exists()
    rerun = _run(posts, POSTS, SECOND)
    assert rerun.code == 0, rerun.err
    assert json.loads(rerun.out)[0]["status"] == "SUCCESS"
    _exactly_once(posts, POSTS, "post_id")


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(("step", "nth"), AFTER_COMMIT)
def test_signal_after_the_commit_point_finishes_first(
    posts: Path, signame: str, step: str, nth: int
) -> None:
    stopped = _stopped(posts, ["signal", signame, step, str(nth), "1"], POSTS, SECOND)
    assert stopped.code == 130, stopped.err
    assert "once it is published" in stopped.err
    folder = posts / "out" / PROD / POSTS
    assert (folder / "2025/09/17/SUCCESS").exists(), "the publication was finished"
    assert not list(folder.rglob("FAILURE"))
    assert _staging_files(posts) == []
    _exactly_once(posts, POSTS, "post_id")
    rerun = _run(posts, POSTS, SECOND)
    assert rerun.code == 0, rerun.err
    [again] = json.loads(rerun.out)
    assert again["status"] == "SKIPPED" and "already exported" in again["reason"]
    _exactly_once(posts, POSTS, "post_id")


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("step", ["journal", "move", "marker"])
def test_second_signal_after_the_commit_point_stops_now(
    posts: Path, signame: str, step: str
) -> None:
    stopped = _stopped(posts, ["signal", signame, step, "1", "2"], POSTS, SECOND)
    assert stopped.code == 130, stopped.err
    assert "second signal" in stopped.err
    journals = list((posts / "out" / BUCKET / "_staging").glob("*/_commit.json"))
    assert len(journals) == 1, "the journal is kept for the next run"
    assert not list((posts / "out" / PROD / POSTS).rglob("FAILURE"))
    rerun = _run(posts, POSTS, SECOND)
    assert rerun.code == 0, rerun.err
    assert "rolled forward" in rerun.err
    _exactly_once(posts, POSTS, "post_id")


# (store method, key part): each write after the commit point, refused for good
APPEND_FAULTS = [
    ("put_bytes", "/manifest_"),
    ("move", "/2025/09/17/"),
    ("replace_if_match", "/SUCCESS"),
    ("replace_if_match", "_state/exports/"),  # the watermark
    ("delete", "_commit.json"),  # the staging clean-up, the journal last
]


@pytest.mark.parametrize(("op", "part"), APPEND_FAULTS)
def test_failure_after_the_commit_point_is_finished_by_the_rerun(
    posts: Path, op: str, part: str
) -> None:
    failed = _stopped(posts, ["fail", op, part], POSTS, SECOND)
    assert failed.code == 1, failed.err
    [result] = json.loads(failed.out)
    assert result["status"] == "FAILURE"
    assert "committed but not finished" in result["error"]
    assert "next run finishes" in result["error"]
    assert result["rows"] >= 1 and result["manifests"]
    folder = posts / "out" / PROD / POSTS
    assert not list(folder.rglob("FAILURE")), "committed data is not marked failed"
    assert list((posts / "out" / BUCKET / "_staging").glob("*/_commit.json"))
    dlq = list((posts / "out" / BUCKET / "dead-letter-queue/failed_exports").glob("*"))
    assert len(dlq) == 1, "the unfinished publication is in the DLQ"
    rerun = _run(posts, POSTS, SECOND)
    assert rerun.code == 0, rerun.err
    assert "rolled forward" in rerun.err
    _exactly_once(posts, POSTS, "post_id")


@pytest.mark.parametrize(
    ("op", "part"),
    [("put_bytes", "idempotency-tokens/"), ("put_bytes", "export-logs/")],
)
def test_bookkeeping_failure_after_publishing_keeps_the_export(
    posts: Path, op: str, part: str
) -> None:
    """The token and the log record come after the publication: their failure is logged,
    and the export is what it is, published."""
    done = _stopped(posts, ["fail", op, part], POSTS, SECOND)
    assert done.code == 0, done.err
    assert json.loads(done.out)[0]["status"] == "SUCCESS"
    assert "injected" in done.err
    _exactly_once(posts, POSTS, "post_id")
    rerun = _run(posts, POSTS, SECOND)
    assert rerun.code == 0, rerun.err
    _exactly_once(posts, POSTS, "post_id")


@pytest.fixture
def codes(demo_dir: Path) -> Path:
    first = _run(demo_dir, CODES, "2025-09-15T00:00:00Z")
    assert first.code == 0, first.err
    return demo_dir


@pytest.mark.parametrize(
    ("op", "part"),
    [("delete", "2025/09/15/SUCCESS"), ("delete", ".parquet"), ("replace_if_match", "/SUCCESS")],
)
def test_full_refresh_never_shows_two_snapshots(codes: Path, op: str, part: str) -> None:
    """Case 1 of issue 15: an old snapshot that cannot be deleted left two SUCCESS
    markers (6 rows for a 3-row table). The old markers now go before the new ones."""
    total = len(warehouse_sql(codes, f"SELECT 1 FROM diagnosticpro_prod.{CODES}"))
    failed = _stopped(codes, ["fail", op, part], CODES, "2025-09-16T00:00:00Z")
    assert failed.code == 1, failed.err
    assert len(_published(codes, CODES)) in (0, total)
    rerun = _run(codes, CODES, "2025-09-16T00:00:00Z")
    assert rerun.code == 0, rerun.err
    _exactly_once(codes, CODES, "code")
    successes = list((codes / "out" / PROD / CODES).rglob("SUCCESS"))
    assert [p.parent.name for p in successes] == ["16"]


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize(
    ("step", "nth"), [("staged", 1), ("journal", 1), ("move", 2), ("retire", 1), ("clean", 1)]
)
def test_full_refresh_signal_at_a_step(codes: Path, signame: str, step: str, nth: int) -> None:
    at = "2025-09-16T00:00:00Z"
    stopped = _stopped(codes, ["signal", signame, step, str(nth), "1"], CODES, at)
    assert stopped.code == 130, stopped.err
    total = len(warehouse_sql(codes, f"SELECT 1 FROM diagnosticpro_prod.{CODES}"))
    assert len(_published(codes, CODES)) == total, "one whole snapshot, old or new"
    assert not list((codes / "out" / PROD / CODES).rglob("FAILURE"))
    rerun = _run(codes, CODES, at)
    assert rerun.code == 0, rerun.err
    _exactly_once(codes, CODES, "code")
