"""``dpexport run --parallel``: tables exported at once write what a sequential run
writes (keys, bytes, manifests, export-log outcomes, results, exit code), really run at
the same time, and stop cleanly on a signal, every running export alike."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from dpexport import api
from dpexport.demo import prepare_demo
from dpexport.errors import UsageError
from dpexport.security.crypto import LocalKeyProvider, open_decrypted
from tests.e2e.cli import Result, dpexport, stopped

AT = "2025-09-17T00:00:00Z"
BUCKET = Path("gs/diagnosticpro-exports")
#: sensor readings in the demo warehouse: its largest export then takes seconds, so the
#: others overlap it by more than the export log's one-second timestamps can blur
ROWS = 100_000
#: an export id, or the start time and id a file or manifest name holds
IDS = re.compile(r"(exp_)?\d{8}_\d{6}(_[0-9a-f]{8})?")
#: what differs between two runs of the same export whoever runs it: when it ran
WHEN = {"timestamp", "export_timestamp", "export_duration_ms"}
#: what an encrypted file's random nonce and data key change (its plain bytes do not)
CIPHER = {"bytes", "checksum", "nonce", "wrapped_key", "compressed_size"}
SMALL = ("parts_catalog", "equipment_manufacturers", "dtc_code_definitions", "audit_logs")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("parallel")
    prepare_demo(base, ROWS)
    return base


def _run(base: Path, root: str, *args: str, hook: list[str] | None = None) -> Result:
    """``dpexport run --json`` into ``base/root``; through ``stop_child`` with ``hook``."""
    cli = ["-c", str(base / "dpexport.yaml"), "--local-root", str(base / root)]
    cli += ["run", "--at", AT, "--json", *args]
    return dpexport(*cli) if hook is None else stopped(hook, *cli)


@pytest.fixture(scope="module")
def runs(demo: Path) -> dict[str, Path]:
    """Every demo table exported one after another, then four at a time, with the same
    keys (the GDPR hash key is a KMS key of the local root: the second root gets the
    first's, so a hashed email is the same text in both)."""
    one = _run(demo, "sequential", "--parallel", "1")
    assert one.code == 0, one.err
    shutil.copytree(demo / "sequential" / "kms", demo / "parallel" / "kms")
    four = _run(demo, "parallel", "--parallel", "4")
    assert four.code == 0, four.err
    assert _results(one) == _results(four)
    (demo / "parallel.err").write_text(four.err)
    return {"sequential": demo / "sequential", "parallel": demo / "parallel"}


def _results(result: Result) -> list[dict[str, Any]]:
    """``run --json``'s results, in their order, without what names the run."""
    return [_same(r) for r in json.loads(result.out)]


def _same(doc: Any, drop: frozenset[str] = frozenset(WHEN)) -> Any:
    """``doc`` with export ids and times replaced, and the keys ``drop`` left out."""
    if isinstance(doc, dict):
        return {k: _same(v, drop) for k, v in doc.items() if k not in drop}
    if isinstance(doc, list):
        return [_same(v, drop) for v in doc]
    return IDS.sub("ID", doc) if isinstance(doc, str) else doc


def _tree(root: Path) -> dict[str, Any]:
    """Every file under ``prod/``, by its key with the export's id and time replaced:
    a data file's sha256 (of its plain bytes when encrypted), a document's JSON."""
    keys = LocalKeyProvider(root / "kms")
    out: dict[str, Any] = {}
    prod = root / BUCKET / "prod"
    for path in sorted(prod.rglob("*")):
        if not path.is_file():
            continue
        key = IDS.sub("ID", path.relative_to(prod).as_posix())
        assert key not in out, f"two files are {key}"
        if path.name == "SUCCESS" or path.name.endswith(".json"):
            drop = WHEN | CIPHER if _encrypted(path) else WHEN
            out[key] = _same(json.loads(path.read_text()), frozenset(drop))
        elif path.name.endswith(".enc"):
            with path.open("rb") as fh:
                out[key] = hashlib.sha256(open_decrypted(fh, keys).read()).hexdigest()
        else:
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _encrypted(document: Path) -> bool:
    """A sidecar or manifest describing encrypted files (their sizes and sums vary)."""
    return any(p.name.endswith(".enc") for p in document.parent.iterdir())


def _log(root: Path) -> list[dict[str, Any]]:
    """The export-log records of a run, by table."""
    records = [json.loads(p.read_text()) for p in (root / BUCKET / "export-logs").rglob("*.json")]
    return sorted(records, key=lambda r: r["table_name"])


def _outcome(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("table_name", "status", "rows", "files", "error", "path", "null_cursor_rows")
    return {k: _same(record[k]) for k in keys} | {"manifests": len(record["manifests"])}


def _overlapping(records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Pairs of exports that ran at the same time for sure: each started (its
    ``export_timestamp``, cut to the second, so up to a second later) before the other
    ended (start plus ``duration_ms``, at the earliest)."""
    spans = {}
    for r in records:
        start = datetime.fromisoformat(r["export_timestamp"].replace("Z", "+00:00"))
        spans[r["table_name"]] = (start, start + timedelta(milliseconds=r["duration_ms"]))
    second = timedelta(seconds=1)
    return [
        (a, b)
        for (a, (sa, ea)), (b, (sb, eb)) in combinations(sorted(spans.items()), 2)
        if sa + second < eb and sb + second < ea
    ]


def test_a_parallel_run_writes_what_a_sequential_run_writes(runs: dict[str, Path]) -> None:
    sequential, parallel = (_tree(runs[k]) for k in ("sequential", "parallel"))
    assert len(sequential) > 1000
    assert sorted(sequential) == sorted(parallel), "the same keys"
    differ = [key for key in sequential if sequential[key] != parallel[key]]
    assert differ == [], f"{len(differ)} file(s) differ, such as {differ[:3]}"


def test_a_parallel_run_logs_the_outcomes_of_a_sequential_run(runs: dict[str, Path]) -> None:
    sequential, parallel = (_log(runs[k]) for k in ("sequential", "parallel"))
    assert len(sequential) == 15
    assert [_outcome(r) for r in sequential] == [_outcome(r) for r in parallel]
    assert {r["status"] for r in parallel} == {"SUCCESS"}


def test_no_export_recovers_another_running_beside_it(runs: dict[str, Path]) -> None:
    """Each export recovers ``_staging/`` before it starts; one finishing meanwhile (its
    owner file deleted, its journal not yet) is still running, not left by a crash."""
    err = (runs["parallel"].parent / "parallel.err").read_text()
    assert "recovering export" not in err and "left by a stopped run" not in err, err


def test_the_tables_of_a_parallel_run_overlap(runs: dict[str, Path]) -> None:
    assert _overlapping(_log(runs["sequential"])) == [], "one after another"
    pairs = _overlapping(_log(runs["parallel"]))
    assert len(pairs) >= 2, pairs
    assert any("sensor_telemetry" in pair for pair in pairs), pairs


def test_a_failing_table_among_parallel_ones_fails_as_it_does_alone(demo: Path) -> None:
    """The schema registry of one table refuses writes: that export fails, the others
    are exported; the same exit code and results whether the tables run one after
    another or at once."""
    hook = ["fail", "replace_if_match", "schemas/diagnosticpro_prod.dtc_code_definitions"]
    tables = [arg for t in SMALL for arg in ("--table", t)]
    one = _run(demo, "failing-sequential", "--parallel", "1", *tables, hook=hook)
    four = _run(demo, "failing-parallel", "--parallel", "4", *tables, hook=hook)
    assert one.code == four.code == 1, one.err + four.err
    assert _results(one) == _results(four)
    statuses = [(r["table"], r["status"]) for r in json.loads(four.out)]
    assert statuses == [(t, "FAILURE" if t == SMALL[2] else "SUCCESS") for t in SMALL]
    failed = json.loads(four.out)[2]["error"]
    assert "injected: replace_if_match" in failed and "dtc_code_definitions" in failed
    for name in ("failing-sequential", "failing-parallel"):
        root = demo / name / BUCKET
        assert len(list((root / "dead-letter-queue").rglob("*.json"))) >= 1
        assert list((root / "prod" / "diagnosticpro_prod" / SMALL[2]).rglob("FAILURE"))
        assert [_outcome(r) for r in _log(demo / "failing-sequential")] == [
            _outcome(r) for r in _log(demo / name)
        ]


def _leftovers(root: Path) -> dict[str, list[str]]:
    """What a stopped run must not leave: staged files, leases, IN_PROGRESS tokens."""
    bucket = root / BUCKET
    tokens = [json.loads(p.read_text()) for p in (bucket / "idempotency-tokens").glob("*.json")]
    return {
        "staging": [p.name for p in (bucket / "_staging").rglob("*") if p.is_file()],
        "leases": [p.name for p in (bucket / "idempotency-tokens" / "_leases").glob("*")],
        "in progress": [t["name"] for t in tokens if t["status"] == "IN_PROGRESS"],
    }


def _tokens(root: Path) -> dict[str, dict[str, Any]]:
    """The run's tokens, by table (``{table}_{yyyymmdd}_{epoch}_{hash8}``)."""
    docs = [json.loads(p.read_text()) for p in (root / BUCKET / "idempotency-tokens").glob("*")]
    return {re.sub(r"_\d{8}_\d+_[0-9a-f]{8}$", "", d["name"]): d for d in docs}


def _published(root: Path, token: dict[str, Any]) -> bool:
    """Every manifest a DONE token names is in place, and listed by its SUCCESS."""
    for uri in token["result"]["manifests"]:
        manifest = root / "gs" / uri.removeprefix("gs://")
        success = json.loads((manifest.parent / "SUCCESS").read_text())
        if not manifest.exists() or manifest.name not in success["manifests"]:
            return False
    return bool(token["result"]["manifests"])


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_every_running_export(demo: Path, signame: str) -> None:
    """A signal when the first export reaches its check of the staged files: the
    exports before their commit point roll back (token FAILED "interrupted", nothing
    visible, no FAILURE marker), those past it finish publishing; no table starts after
    it. The rerun exports what is left, each row once."""
    root = f"stopped-{signame}"
    stopped = _run(demo, root, "--parallel", "4", hook=["signal", signame, "verify", "1", "1"])
    assert stopped.code == 130, stopped.err
    assert "interrupted" in stopped.err and "stopping; exports before" in stopped.err
    assert _leftovers(demo / root) == {"staging": [], "leases": [], "in progress": []}
    tokens = _tokens(demo / root)
    interrupted = [t for t, doc in tokens.items() if doc.get("error") == "interrupted"]
    assert len(interrupted) >= 2, tokens
    assert len(tokens) < 15, "tables not started when the signal came are not"
    prod = demo / root / BUCKET / "prod"
    assert not list(prod.rglob("FAILURE")), "a stop is not a failure"
    for doc in tokens.values():
        assert doc["status"] == "FAILED" or _published(demo / root, doc), doc
    rerun = _run(demo, root, "--parallel", "4")
    assert rerun.code == 0, rerun.err
    statuses = {r["table"]: r["status"] for r in json.loads(rerun.out)}
    done = {t for t, doc in tokens.items() if doc["status"] == "DONE"}
    assert {t for t, s in statuses.items() if s == "SKIPPED"} == done
    check = dpexport("--local-root", demo / root, "verify", "gs://diagnosticpro-exports/prod/")
    assert check.code == 0, check.out + check.err


def test_a_signal_past_the_commit_point_lets_the_publication_finish(demo: Path) -> None:
    """A signal at the first export's journal: that export publishes, then stops; the
    others running roll back."""
    root = "stopped-at-journal"
    tables = [arg for t in SMALL for arg in ("--table", t)]
    hook = ["signal", "SIGINT", "journal", "1", "1"]
    stopped = _run(demo, root, "--parallel", "4", *tables, hook=hook)
    assert stopped.code == 130, stopped.err
    assert _leftovers(demo / root) == {"staging": [], "leases": [], "in progress": []}
    tokens = _tokens(demo / root)
    done = [doc for doc in tokens.values() if doc["status"] == "DONE"]
    assert done, "the export past its commit point published"
    assert all(_published(demo / root, doc) for doc in done)
    assert all(doc["error"] == "interrupted" for doc in tokens.values() if doc not in done)
    check = dpexport("--local-root", demo / root, "verify", "gs://diagnosticpro-exports/prod/")
    assert check.code == 0, check.out + check.err


def test_help_names_the_option_and_bad_values_are_refused(demo: Path) -> None:
    help_text = dpexport("run", "--help")
    assert help_text.code == 0
    assert "--parallel" in help_text.out and "1: one after another" in help_text.out
    zero = _run(demo, "refused", "--parallel", "0")
    assert zero.code == 2 and "--parallel" in zero.err and "0" in zero.err
    assert not (demo / "refused").exists(), "nothing written"
    with pytest.raises(UsageError, match="parallel=0"):
        api.run(demo / "dpexport.yaml", local_root=demo / "refused", parallel=0)
    assert not (demo / "refused").exists()


def test_check_is_as_it_was(demo: Path) -> None:
    """``check`` takes no such option and the config no such key: nothing to refuse."""
    report = dpexport("-c", demo / "dpexport.yaml", "check", "--json")
    assert report.code == 0, report.err
    assert json.loads(report.out)["ok"] is True
    assert dpexport("-c", demo / "dpexport.yaml", "check", "--parallel", "2").code == 2


def test_a_copy_beside_a_streaming_scan_keeps_the_whole_memory_limit(tmp_path: Path) -> None:
    """A parallel run's exports share one DuckDB database: while one streams a plain
    scan (under the engine's lowered streaming limit), another's COPY or sorted scan
    still gets the whole ``memory_limit`` (under the streaming limit DuckDB fails them:
    "Out of Memory Error")."""
    import duckdb

    from dpexport.engines.base import ScanRequest
    from dpexport.engines.duckdb import DuckDBEngine

    path = tmp_path / "wide.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA s")
        con.execute(
            "CREATE TABLE s.t AS SELECT range AS id, md5(range::VARCHAR) AS a, "
            "md5((range + 1)::VARCHAR) AS b, md5((range + 2)::VARCHAR) AS c, "
            "md5((range + 3)::VARCHAR) AS d FROM range(3000000)"
        )
    with DuckDBEngine(path, memory_limit="384MB", threads=2) as engine:
        streaming = engine.scan(ScanRequest("s", "t"))
        assert streaming.read_next_batch().num_rows > 0  # a plain scan under way
        engine.copy(ScanRequest("s", "t"), tmp_path / "t.parquet", "FORMAT parquet")
        sorted_rows = engine.scan(ScanRequest("s", "t", order_by=("a",)))
        assert sum(b.num_rows for b in sorted_rows) == 3_000_000
        assert sum(b.num_rows for b in streaming) > 0
    with duckdb.connect() as con:
        written = con.execute(f"SELECT count(*) FROM '{tmp_path / 't.parquet'}'").fetchall()
    assert written == [(3_000_000,)]


def test_a_local_store_writes_while_other_threads_prune_its_folders(tmp_path: Path) -> None:
    """Exports beside each other on one local root write into folders that another's
    delete may leave empty and prune (``_staging/`` first of all): each write makes its
    folder again when that happens, none fails."""
    import threading

    from dpexport.storage.local import LocalStore

    store = LocalStore(tmp_path)
    errors: list[BaseException] = []

    def churn(worker: int) -> None:
        try:
            for i in range(400):
                key = f"_staging/exp_{worker}_{i}/_owner.json"
                store.put_bytes(key, b"{}")
                store.delete(key)  # prunes exp_{worker}_{i}/ and, when empty, _staging/
        except BaseException as exc:  # reported below, with the key it failed on
            errors.append(exc)

    threads = [threading.Thread(target=churn, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not (tmp_path / "_staging").exists(), "every folder pruned at the end"


def test_the_memory_budget_lets_through_what_fits_and_waits_for_the_rest() -> None:
    """Two reservations that fit are held together; one that does not waits until the
    others give theirs back, and one larger than the whole budget takes all of it."""
    import threading
    import time

    from dpexport.flow.budget import MemoryBudget

    budget = MemoryBudget(100)
    order: list[str] = []
    with budget.hold(60), budget.hold(40):
        assert budget.peak == 100

        def heavy() -> None:
            with budget.hold(500):  # more than the whole budget: all of it
                order.append("heavy")

        waiting = threading.Thread(target=heavy)
        waiting.start()
        time.sleep(0.5)  # not a timing assertion: the thread must not get in meanwhile
        order.append("released")
    waiting.join(10)
    assert order == ["released", "heavy"]
    assert budget.peak == 100


def test_exports_beyond_the_reading_slots_read_no_batch_until_one_is_free() -> None:
    """With one slot, a second export's reader is not read (a BigQuery reader would
    start fetching ahead) until the first export's batches are written; the bytes are
    reserved inside the slot."""
    import threading
    import time
    from types import SimpleNamespace

    import pyarrow as pa

    from dpexport.flow.budget import MemoryBudget

    budget = MemoryBudget(1 << 30, slots=1)
    spec: Any = SimpleNamespace(format="JSONL")  # all the weight reads of it
    order: list[str] = []

    def reader(name: str) -> pa.RecordBatchReader:
        def batches() -> Any:
            order.append(f"{name} reads")
            yield pa.record_batch({"x": [1, 2, 3]})

        return pa.RecordBatchReader.from_batches(pa.schema({"x": pa.int64()}), batches())

    def second() -> None:
        with budget.streaming(spec, reader("second"), 3, None) as batches:
            assert sum(len(b) for b in batches) == 3

    with budget.streaming(spec, reader("first"), 3, None) as batches:
        assert sum(len(b) for b in batches) == 3
        waiting = threading.Thread(target=second)
        waiting.start()
        time.sleep(0.5)  # not a timing assertion: the second must not read meanwhile
        order.append("first written")
    waiting.join(10)
    assert order == ["first reads", "first written", "second reads"]
    assert (budget.slots, budget.peak_reading) == (1, 1)
    from dpexport.formats.parallel import cores

    assert MemoryBudget().slots == cores()  # the cores by default
