"""Fixtures of the check tests: engines over a warehouse file, and ``export``, which runs
the real export of one table into a local bucket and tells what it did."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dpexport.config import load_config_text
from dpexport.config.spec import GdprCompliance, Partitioning
from dpexport.engines.base import Engine
from dpexport.engines.duckdb import DuckDBEngine
from dpexport.flow.context import RunOptions
from dpexport.flow.runner import run_exports
from dpexport.publish.manifest import dumps
from dpexport.storage.local import LocalStore
from dpexport.transforms.pipeline import Checks, Transforms, stats_key
from tests.unit.checks.check_harness import (
    LOGICAL,
    ExportFn,
    FakeEngine,
    Outcome,
    make_db,
    table_spec,
)

#: the rest of the config (defaults); each export replaces its one table
BASE_CONFIG = load_config_text(
    "warehouse: {engine: duckdb, path: w.duckdb}\n"
    "exports:\n"
    "  - {source: diagnosticpro_prod.t, destination: 'gs://b/t/', format: PARQUET,"
    " compression: SNAPPY}\n"
)


@pytest.fixture(params=["fake", "duckdb"])
def engine_factory(request: pytest.FixtureRequest) -> Iterator[Callable[[Path], Engine]]:
    opened: list[Engine] = []

    def open_engine(path: Path) -> Engine:
        engine: Engine = FakeEngine(path) if request.param == "fake" else DuckDBEngine(path)
        opened.append(engine)
        return engine

    yield open_engine
    for engine in opened:
        engine.close()


@pytest.fixture
def export(
    tmp_path: Path, engine_factory: Callable[[Path], Engine], monkeypatch: pytest.MonkeyPatch
) -> ExportFn:
    """``export(sql, table, validation, gdpr=None, previous_stats=None, ...)``: build a
    warehouse from ``sql`` and export ``table`` with those checks, as ``dpexport run``
    does (``flow.runner.run_exports``), into a fresh local bucket.

    The only hooks: the :class:`Checks` the export made is kept to be asked, and
    ``corrupt`` (when given) changes each batch after the transforms, before the
    export observes and writes it: the bug a check of written data must catch. (It
    sees the empty batch the export derives its output schema from, too.)"""
    counter = itertools.count()

    def run(
        sql: str,
        table: str,
        validation: Iterable[object],
        *,
        gdpr: GdprCompliance | None = None,
        previous_stats: dict[str, Any] | None = None,
        logical_time: datetime = LOGICAL,
        partitioning: Partitioning | None = None,
        corrupt: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
    ) -> Outcome:
        base = tmp_path / f"x{next(counter)}"
        engine = engine_factory(make_db(base / "w.duckdb", sql))
        spec = table_spec(table, validation, gdpr, partitioning)
        config = dataclasses.replace(BASE_CONFIG, tables=(spec,))
        bucket = LocalStore(base / "buckets" / "gs" / "b", url="gs://b")
        if previous_stats is not None:  # what an earlier export stored for this table
            bucket.put_bytes(stats_key(spec), dumps(previous_stats))

        made: list[Checks] = []
        real_checks = Transforms.checks
        real_apply = Transforms.apply

        def keep_checks(self: Transforms, *args: Any, **kwargs: Any) -> Checks:
            checks = real_checks(self, *args, **kwargs)
            made.append(checks)
            return checks

        def apply_then_corrupt(
            self: Transforms, batch: pa.RecordBatch, schema: pa.Schema | None = None
        ) -> pa.RecordBatch:
            assert corrupt is not None
            out = corrupt(real_apply(self, batch))
            return out.cast(schema) if schema is not None and out.schema != schema else out

        with monkeypatch.context() as patch:
            patch.setattr(Transforms, "checks", keep_checks)
            if corrupt is not None:
                patch.setattr(Transforms, "apply", apply_then_corrupt)
            options = RunOptions(at=logical_time, local_root=base / "buckets")
            (result,) = run_exports(config, engine, options)
        assert len(made) == 1, result
        out = Outcome(result, made[0].run, bucket, spec)
        _assert_reported(out)
        return out

    return run


def _assert_reported(out: Outcome) -> None:
    """The export reported its checks: a published manifest holds every result; a
    failing check fails the export, naming it."""
    failures = out.run.failures()
    if out.export.status == "SUCCESS":
        assert not failures, failures
        assert out.manifest_checks() == [r.to_json() for r in out.run.results()]
        return
    assert out.export.status == "FAILURE", out.export
    error = out.export.error or ""
    if "data checks failed" in error:
        assert failures and all(f"{f.name} ({f.detail})" in error for f in failures), error
