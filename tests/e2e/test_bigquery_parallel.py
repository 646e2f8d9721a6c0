"""``run --parallel`` on BigQuery: the jobs of the tables exported at once wait side by
side, not one after another.

BigQuery spends seconds on each job where the emulator answers in milliseconds, so the
emulator is reached through :mod:`tests.latency_proxy`, which holds every query for
:data:`DELAY` seconds and records when each was in flight. The assertions are about order
(which queries were in flight at once), never about wall-clock times.
"""

from __future__ import annotations

import json
import os
import time
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from tests.bq_emulator import DEMO_DATASET, BQEmulator, bq, load_demo  # noqa: F401
from tests.e2e.cli import dpexport
from tests.latency_proxy import LatencyFront, Span, latency_front

#: tables small enough for the server-side path (EXPORT DATA) in Parquet and JSONL
TABLES = ("dtc_code_definitions", "equipment_manufacturers", "parts_catalog", "users")
#: seconds each query is held: far more than lies between the exports' first queries by
#: default (leases, tokens, ``_staging/`` recovered one at a time: 4 ms here)
DELAY = 0.5
AT = ("--at", "2025-09-16T14:30:22Z")


@pytest.fixture(scope="module")
def loaded(bq: BQEmulator, demo_warehouse: Path) -> dict[str, int]:  # noqa: F811
    return load_demo(bq, demo_warehouse, list(TABLES))


def _config(bq: BQEmulator, rest: str, bucket: str) -> str:  # noqa: F811
    lines = [
        "project: test",
        "environment: prod",
        "warehouse:",
        "  engine: bigquery",
        f"  project: {bq.project}",
        "  location: US",
        f"  api_endpoint: {rest}",
        f"  storage_api_endpoint: {bq.grpc}",
        f"buckets: {{exports: gs://{bucket}}}",
        "exports:",
    ]
    for i, table in enumerate(TABLES):
        lines += [
            f"  - source: {DEMO_DATASET}.{table}",
            f"    destination: gs://{bucket}/prod/{DEMO_DATASET}/{table}/",
            f"    format: {'PARQUET' if i % 2 == 0 else 'JSONL'}",
            f"    compression: {'SNAPPY' if i % 2 == 0 else 'GZIP'}",
            "    mode: FULL_REFRESH",
        ]
    return "\n".join(lines) + "\n"


def _run(bq: BQEmulator, tmp_path: Path, *args: str) -> tuple[list[Any], LatencyFront, float]:  # noqa: F811
    """``run`` of :data:`TABLES` with ``args`` through the latency front: the results,
    the front (its spans) and the run's seconds (reported, not asserted)."""
    root = Path(os.environ["DPEXPORT_TEST_BQ_LOCAL_ROOT"])
    bucket = f"bq-parallel-{len(args)}-{bq.project}"  # no earlier run's tokens
    config = tmp_path / f"parallel-{len(args)}.yaml"
    with latency_front(bq.rest, DELAY) as front:
        config.write_text(_config(bq, front.url, bucket))
        started = time.monotonic()
        result = dpexport(
            "-c",
            config,
            "--local-root",
            root,
            "run",
            *AT,
            "--json",
            *args,
            env={"BIGQUERY_EMULATOR_HOST": ""},
        )
        seconds = time.monotonic() - started
    assert result.code == 0, result.err
    return json.loads(result.out), front, seconds


def _overlapping(spans: dict[str, list[Span]]) -> list[tuple[str, str]]:
    """Pairs of tables some query of which was in flight while one of the other's was."""
    return [
        (a, b)
        for (a, sa), (b, sb) in combinations(sorted(spans.items()), 2)
        if any(x.start < y.end and y.start < x.end for x in sa for y in sb)
    ]


def _queries(front: LatencyFront) -> dict[str, list[Span]]:
    """Each table's queries (counts, EXPORT DATA jobs)."""
    return {t: front.spans_of(f"`{t}`") for t in TABLES}


def test_the_jobs_of_a_parallel_run_wait_side_by_side(
    bq: BQEmulator,  # noqa: F811
    loaded: dict[str, int],
    tmp_path: Path,
) -> None:
    """One after another, no two tables' queries are in flight at once; by default (four
    tables a core on BigQuery, so at least four) every table's are beside every other's."""
    one, sequential, one_s = _run(bq, tmp_path, "--parallel", "1")
    default, parallel, default_s = _run(bq, tmp_path)
    print(
        f"\n{len(TABLES)} tables, {DELAY}s a query: "
        f"one at a time {one_s:.1f}s, by default {default_s:.1f}s"
    )
    for results in (one, default):
        assert [(r["table"], r["status"], r["rows"]) for r in results] == [
            (t, "SUCCESS", loaded[t]) for t in TABLES
        ], results
    for front in (sequential, parallel):  # the Parquet tables take the server-side path
        exports = [s.sql for s in front.spans_of("EXPORT DATA")]
        assert [t for t in TABLES if any(f"`{t}`" in sql for sql in exports)] == list(
            TABLES[::2]
        ), exports
    assert _overlapping(_queries(sequential)) == [], "one table after another"
    assert _overlapping(_queries(parallel)) == sorted(combinations(sorted(TABLES), 2))
