"""Fixtures of the check tests: engines over a warehouse file, and a mini export."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dpexport.checks import CheckContext, CheckRun
from dpexport.config.spec import GdprCompliance
from dpexport.engines.base import Engine, ScanRequest
from dpexport.transforms.gdpr import anonymize, gdpr_plan
from tests.unit.checks.check_harness import (
    DATASET,
    KEY,
    LOGICAL,
    ExportFn,
    FakeEngine,
    Outcome,
    make_db,
    table_spec,
)


@pytest.fixture(params=["fake", "duckdb"])
def engine_factory(request: pytest.FixtureRequest) -> Iterator[Callable[[Path], Engine]]:
    opened: list[Any] = []

    def open_engine(path: Path) -> Engine:
        if request.param == "fake":
            engine: Any = FakeEngine(path)
        else:
            mod = pytest.importorskip("dpexport.engines.duckdb")
            engine = mod.DuckDBEngine(path)
        opened.append(engine)
        return engine

    yield open_engine
    for engine in opened:
        engine.close()


@pytest.fixture
def export(tmp_path: Path, engine_factory: Callable[[Path], Engine]) -> ExportFn:
    """``export(sql, table, validation, gdpr=None, previous_stats=None, ...)``: build a
    warehouse from ``sql``, run the checks around a scan as the exporter does."""
    counter = iter(range(1000))

    def run(
        sql: str,
        table: str,
        validation: Iterable[object],
        *,
        gdpr: GdprCompliance | None = None,
        previous_stats: dict[str, object] | None = None,
        logical_time: datetime = LOGICAL,
        order_by: tuple[str, ...] = (),
        read_back: bool = True,
        corrupt: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
    ) -> Outcome:
        path = make_db(tmp_path / f"w{next(counter)}.duckdb", sql)
        engine = engine_factory(path)
        spec = table_spec(table, validation, gdpr)
        plan = gdpr_plan(spec)
        excluded = plan.excluded if plan else ()
        request = ScanRequest(DATASET, table, exclude=tuple(excluded), order_by=order_by)
        ctx = CheckContext(spec, engine, request, logical_time, previous_stats)
        checks = CheckRun(ctx)
        scan = checks.prepare(request)
        checks.before_scan()
        batches = []
        for batch in engine.scan(scan):
            out = anonymize(batch, plan, KEY) if plan else batch
            if corrupt is not None:
                out = corrupt(out)
            checks.observe(out)
            batches.append(out)
        schema = batches[0].schema if batches else engine.scan(scan).schema

        def raw_values(column: str) -> Iterable[str]:
            raw = dataclasses.replace(request, columns=(column,), exclude=())
            for b in engine.scan(raw):
                yield from (str(v) for v in b.column(column).to_pylist() if v is not None)

        if read_back:
            checks.after_write(lambda: iter(batches), excluded, raw_values if plan else None)
        qreq = checks.quarantine_request()
        quarantined = engine.scan(qreq).read_all() if qreq is not None else None
        return Outcome(checks, pa.Table.from_batches(batches, schema), quarantined)

    return run
