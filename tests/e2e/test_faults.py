"""Exports through a store that fails 10% of its requests still succeed, exactly once;
a permission error is not retried and says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq

import dpexport
from dpexport.engines import open_engine
from dpexport.errors import PermissionDenied
from dpexport.flow.context import RunOptions
from dpexport.flow.runner import run_exports
from dpexport.reliability.retry import Retrier, RetryPolicy
from dpexport.storage.base import Store
from tests.unit.reliability.faults import FlakyStore

AT = datetime(2025, 9, 16, 14, 30, 22, tzinfo=UTC)
TABLES = ("reddit_diagnostic_posts", "parts_catalog", "billing_transactions")


class FakeTime:
    """A clock that sleeps instantly: retries wait in simulated time only."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _run(demo_dir: Path, wrap: Any, fake: FakeTime) -> list[Any]:
    config = dpexport.load_config(demo_dir / "dpexport.yaml")
    policy = RetryPolicy.from_config(config)
    engine = open_engine(config.warehouse, base_dir=demo_dir)
    try:
        return run_exports(
            config,
            engine,
            RunOptions(
                tables=TABLES,
                at=AT,
                local_root=demo_dir / "out",
                wrap_store=wrap,
                retrier=lambda: Retrier(policy, clock=fake.clock, sleep=fake.sleep),
            ),
        )
    finally:
        engine.close()


def test_ten_percent_faults_every_export_succeeds(demo_dir: Path) -> None:
    fake = FakeTime()
    flaky: list[FlakyStore] = []

    def wrap(store: Store) -> Store:
        flaky.append(FlakyStore(store, seed=len(flaky) + 7, rate=0.10))
        return flaky[-1]

    results = _run(demo_dir, wrap, fake)
    assert [r.status for r in results] == ["SUCCESS"] * 3, [r.error for r in results]
    assert sum(len(f.failures) for f in flaky) > 5
    assert fake.slept and max(fake.slept) <= 3600
    bucket = demo_dir / "out/gs/diagnosticpro-exports"
    records = [json.loads(p.read_text()) for p in (bucket / "export-logs").rglob("*.json")]
    assert {r["status"] for r in records} == {"SUCCESS"}
    # each record holds its export's retries, except those of writing the record itself
    logged = sum(r["retry_count"] for r in records)
    assert len(fake.slept) - len(records) <= logged <= len(fake.slept)
    assert logged > 0
    assert all(len(r["retries"]) >= r["retry_count"] for r in records)
    report = dpexport.verify("gs://diagnosticpro-exports/prod/", local_root=demo_dir / "out")
    assert report.ok, [(p.file, p.problem) for p in report.problems]
    ids = []
    for success in (bucket / "prod/diagnosticpro_prod/reddit_diagnostic_posts").rglob("SUCCESS"):
        for name in json.loads(success.read_text())["manifests"]:
            for entry in json.loads((success.parent / name).read_text())["files"]:
                ids += pq.read_table(success.parent / entry["name"]).column("post_id").to_pylist()
    source = (
        duckdb.connect(str(demo_dir / "warehouse.duckdb"), read_only=True)
        .execute("SELECT post_id FROM diagnosticpro_prod.reddit_diagnostic_posts")
        .fetchall()
    )
    assert sorted(ids) == sorted(r[0] for r in source)


class DeniedStore:
    """Every upload is refused, as a bucket without objectCreator would."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.url = inner.url

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_bytes(self, key: str, data: bytes) -> Any:
        if key.startswith("prod/") or key.startswith("_staging/"):
            raise PermissionDenied(
                "403 Forbidden: storage.objects.create denied for serviceAccount:bigquery-exporter",
                uri=self.inner.uri(key),
            )
        return self.inner.put_bytes(key, data)


def test_permission_denied_is_not_retried(demo_dir: Path) -> None:
    fake = FakeTime()
    results = _run(demo_dir, DeniedStore, fake)
    assert [r.status for r in results] == ["FAILURE"] * 3
    assert all("PERMISSION" in (r.error or "") or "denied" in (r.error or "") for r in results)
    assert fake.slept == []
