"""A table's retention (CONTRACT §12): the longest of spec 4.1's ``retention`` and what
its ``compliance`` list implies; none for ``compact``'s snapshot, whose rows the
increments keep; ``check_deletable`` refuses to the second before it ends."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from dpexport.config import load_config_text
from dpexport.config.spec import TableSpec
from dpexport.ops.retention import RetentionHeld, check_deletable, kept_until, table_retention
from dpexport.storage import layout

CONFIG = """
project: p
environment: prod
buckets: {exports: gs://bk}
exports:
  - {source: ds.api_access_log, destination: gs://bk/ds/api/, format: PARQUET, mode: APPEND,
     partitioning: {field: ts, granularity: daily}}
  - {source: ds.ledger, destination: gs://bk/ds/ledger/, format: PARQUET, mode: APPEND,
     partitioning: {field: ts, granularity: daily}, compliance: [SOX_compliant]}
  - {source: ds.audit, destination: gs://bk/ds/audit/, format: PARQUET, mode: APPEND,
     partitioning: {field: ts, granularity: daily}, compliance: [SOC2]}
  - {source: ds.plain, destination: gs://bk/ds/plain/, format: PARQUET, mode: FULL_REFRESH}
append_only:
  api_access_log: {export_mode: APPEND, retention: "2190 days"}
  ledger: {export_mode: APPEND, retention: "4000 days"}
  audit: {export_mode: APPEND, retention: "30 days"}
"""
WRITTEN = datetime(2025, 9, 16, 12, 0, tzinfo=UTC)


def _specs() -> dict[str, TableSpec]:
    return {t.table: t for t in load_config_text(CONFIG).tables}


def test_the_longest_of_retention_and_compliance() -> None:
    specs = _specs()
    assert table_retention(specs["api_access_log"]) == timedelta(days=2190)
    assert table_retention(specs["ledger"]) == timedelta(days=4000)  # longer than SOX's 7 y
    assert table_retention(specs["audit"]) == timedelta(days=3652)  # compliance 10 years
    assert table_retention(specs["plain"]) is None
    assert kept_until(specs["plain"], WRITTEN) is None


def test_compacts_snapshot_has_no_retention_of_its_own() -> None:
    spec = _specs()["ledger"]
    snapshot = dataclasses.replace(
        spec, mode="FULL_REFRESH", destination=layout.snapshot_destination(spec.destination)
    )
    assert table_retention(snapshot) is None


def test_check_deletable_refuses_to_the_second() -> None:
    spec = _specs()["api_access_log"]
    end = WRITTEN + timedelta(days=2190)
    with pytest.raises(RetentionHeld) as held:
        check_deletable(spec, "gs://bk/ds/api/f.parquet", WRITTEN, end - timedelta(seconds=1))
    assert str(held.value).startswith(
        "gs://bk/ds/api/f.parquet is kept until 2031-09-15 "
        "(retention 2190 days of ds.api_access_log); not deleted"
    )
    assert held.value.code == "FAILED_PRECONDITION"
    check_deletable(spec, "gs://bk/ds/api/f.parquet", WRITTEN, end)  # ends: no error
