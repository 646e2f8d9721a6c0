"""``dlq_configuration.storage_location``, ``idempotency_design.storage.location`` and
``idempotency_design.storage.retention`` take effect (spec 7.2, 7.3; issue 17).

Through the CLI: a failed export's DLQ entry lands under the configured location (any
bucket, mapped under ``--local-root`` as destinations are) and ``dlq list|retry`` and
``status`` read it there; tokens land under theirs and a rerun finds them (SKIPPED);
``lifecycle sweep`` deletes a token older than the retention; without the keys, both
stay at the export bucket's reserved prefixes; ``check`` refuses a location inside an
export destination.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.e2e.cli import Result, dpexport

AT = "2025-09-16T14:30:22Z"
CONFIG = """\
project: p
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: gs://b}}
exports:
  - source: ds.events
    destination: gs://b/events/
    mode: APPEND
    change_column: updated_at
    freshness: 1 hour
{extra}"""
DLQ = "dlq_configuration: {storage_location: gs://other-bucket/dlq/}\n"
TOKENS = "idempotency_design: {{storage: {{location: gs://state/tokens/, retention: {days}}}}}\n"


def _setup(tmp_path: Path, newest: str, extra: str = "") -> Path:
    """A DuckDB table whose newest ``updated_at`` is ``newest``, and its config."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        "CREATE TABLE ds.events AS SELECT i AS id, repeat('x', i + 1) AS content, "
        f"TIMESTAMP '{newest}' - INTERVAL (i) MINUTE AS updated_at FROM range(0, 30) t(i)"
    )
    con.close()
    (tmp_path / "dpexport.yaml").write_text(CONFIG.format(extra=extra), encoding="utf-8")
    return tmp_path


def _cli(base: Path, *args: str) -> Result:
    return dpexport("-c", base / "dpexport.yaml", "--local-root", base / "out", *args)


def _run(base: Path) -> tuple[int, dict[str, object]]:
    result = _cli(base, "run", "--at", AT, "--json")
    [record] = json.loads(result.out)
    return result.code, record


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_failed_export_goes_to_the_configured_dlq(tmp_path: Path) -> None:
    base = _setup(tmp_path, "2025-09-14 14:00:00", DLQ)  # stale: the export fails
    code, record = _run(base)
    assert code == 1 and record["status"] == "FAILURE", record
    eid = str(record["export_id"])
    dlq = base / "out" / "gs" / "other-bucket" / "dlq"
    assert _files(dlq) == [
        f"failed_exports/{eid}/error_details.json",
        f"failed_exports/{eid}/export_request.json",
        f"failed_exports/{eid}/retry_history.json",
    ]
    assert not (base / "out" / "gs" / "b" / "dead-letter-queue").exists()

    listed = _cli(base, "dlq", "list", "--json")
    assert listed.code == 0, listed.err
    [entry] = json.loads(listed.out)
    assert entry["export_id"] == eid and entry["state"] == "open"
    assert entry["uri"] == f"gs://other-bucket/dlq/failed_exports/{eid}/"
    status = _cli(base, "status", "--json")
    assert status.code == 0, status.err
    assert [s["dlq_open"] for s in json.loads(status.out)] == [1]

    con = duckdb.connect(str(base / "warehouse.duckdb"))  # the source catches up
    con.execute("INSERT INTO ds.events VALUES (99, 'x', TIMESTAMP '2025-09-16 14:20:00')")
    con.close()
    retried = _cli(base, "dlq", "retry", eid, "--json")
    assert retried.code == 0, retried.out + retried.err
    [outcome] = json.loads(retried.out)
    assert outcome["outcome"] == "resolved", outcome
    assert _files(dlq) == []
    assert json.loads(_cli(base, "dlq", "list", "--json").out) == []


def test_quarantined_rows_go_to_the_configured_dlq(tmp_path: Path) -> None:
    base = _setup(tmp_path, "2025-09-16 14:00:00", DLQ)
    config = base / "dpexport.yaml"
    text = config.read_text(encoding="utf-8").replace(
        "    freshness: 1 hour\n",
        "    freshness: 1 hour\n"
        "    validation: [{content_length_check: {max: 10, on_fail: quarantine}}]\n",
    )
    config.write_text(text, encoding="utf-8")
    code, record = _run(base)
    assert code == 0 and record["rows"] == 10, record
    dlq = base / "out" / "gs" / "other-bucket" / "dlq"
    name = f"quarantined_rows/{record['export_id']}/events.jsonl.gz"
    assert _files(dlq) == [name]
    with gzip.open(dlq / name, "rt") as fh:
        assert len(fh.readlines()) == 20
    assert not (base / "out" / "gs" / "b" / "dead-letter-queue").exists()


def test_tokens_live_under_their_location_and_a_rerun_finds_them(tmp_path: Path) -> None:
    base = _setup(tmp_path, "2025-09-16 14:00:00", TOKENS.format(days="7 days"))
    code, record = _run(base)
    assert code == 0 and record["status"] == "SUCCESS", record
    tokens = base / "out" / "gs" / "state" / "tokens"
    [name] = _files(tokens)  # the lease is released: only the token stays
    assert name.startswith("events_20250916_") and name.endswith(".json")
    token = json.loads((tokens / name).read_text())
    assert token["status"] == "DONE" and token["export_id"] == record["export_id"]
    assert token["lease"] == "tokens/_leases/ds.events.json"
    assert not (base / "out" / "gs" / "b" / "idempotency-tokens").exists()

    code, again = _run(base)
    assert code == 0 and again["status"] == "SKIPPED", again
    assert name[: -len(".json")] in str(again["reason"])
    plan = _cli(base, "plan", "--at", AT, "--json")
    assert plan.code == 0, plan.err
    assert [p["token_status"] for p in json.loads(plan.out)] == ["DONE"]


@pytest.mark.parametrize(("retention", "deleted"), [("7 days", True), ("30 days", False)])
def test_sweep_deletes_tokens_older_than_the_retention(
    tmp_path: Path, retention: str, deleted: bool
) -> None:
    base = _setup(tmp_path, "2025-09-16 14:00:00", TOKENS.format(days=retention))
    assert _run(base)[0] == 0
    tokens = base / "out" / "gs" / "state" / "tokens"
    [name] = _files(tokens)
    later = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    swept = _cli(base, "lifecycle", "sweep", "--json", "--now", later)
    assert swept.code == 0, swept.out + swept.err
    rules = {(i["rule"], i["what"]): i["status"] for i in json.loads(swept.out)}
    if deleted:
        assert rules[("idempotency_tokens", f"tokens/{name}")] == "deleted"
        assert _files(tokens) == []
    else:
        assert ("idempotency_tokens", f"tokens/{name}") not in rules
        assert _files(tokens) == [name]


def test_without_locations_the_reserved_prefixes_stay(tmp_path: Path) -> None:
    base = _setup(tmp_path, "2025-09-14 14:00:00")
    code, record = _run(base)
    assert code == 1, record
    bucket = base / "out" / "gs" / "b"
    eid = record["export_id"]
    assert (
        bucket / "dead-letter-queue" / "failed_exports" / str(eid) / "error_details.json"
    ).exists()
    [token] = _files(bucket / "idempotency-tokens")
    assert token.startswith("events_20250916_")
    assert sorted(p.name for p in (base / "out" / "gs").iterdir()) == ["b"]


_AT_DLQ = "dlq_configuration.storage_location"
_AT_TOKENS = "idempotency_design.storage.location"


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ("dlq_configuration: {storage_location: gs://b/events/dlq/}\n", _AT_DLQ),
        ("dlq_configuration: {storage_location: 'gs:/other/dlq/'}\n", _AT_DLQ),
        ("idempotency_design: {storage: {location: gs://b/}}\n", _AT_TOKENS),
    ],
)
def test_check_refuses_a_location_inside_a_destination_or_not_a_uri(
    tmp_path: Path, extra: str, path: str
) -> None:
    base = _setup(tmp_path, "2025-09-16 14:00:00", extra)
    result = _cli(base, "check")
    assert result.code == 2, result.out + result.err
    assert path in result.err, result.err
    assert not (base / "out").exists()
