"""Reading a time-partitioned slice folder by folder (folder_scan) gives exactly the
rows of the one sorted scan, each in its own folder, on a real DuckDB: TIMESTAMPTZ,
TIMESTAMP and DATE time columns, rows on the hour boundaries, NULL times, and a
filter of the config combined with the folder ranges."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from dpexport.config.spec import Granularity, Partitioning, SubPartition
from dpexport.engines.base import ScanRequest
from dpexport.engines.duckdb import DuckDBEngine
from dpexport.engines.duckdb_layout import partition_key_sql
from dpexport.planning import folder_scan
from dpexport.storage import layout

TABLE = """
CREATE TABLE ds.events AS
SELECT
    i AS id,
    TIMESTAMPTZ '2025-09-15 22:00:00+00' + to_microseconds((i * 37_000_003) % 14_400_000_000)
        AS at_tz,
    TIMESTAMP '2025-12-31 22:00:00' + to_microseconds((i * 37_000_003) % 14_400_000_000)
        AS at_naive,
    DATE '2025-12-30' + (i % 4)::INTEGER AS day,
    ['a', 'b', 'c'][1 + i % 3] AS kind
FROM range(20000) t(i)
UNION ALL SELECT 20000, TIMESTAMPTZ '2025-09-16 00:00:00+00', TIMESTAMP '2026-01-01 00:00:00',
    DATE '2026-01-01', 'a'
UNION ALL SELECT 20001, TIMESTAMPTZ '2025-09-15 23:59:59.999999+00',
    TIMESTAMP '2025-12-31 23:59:59.999999', DATE '2025-12-31', 'b'
UNION ALL SELECT 20002, NULL, NULL, NULL, 'c'
"""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBEngine]:
    path: Path = tmp_path_factory.mktemp("fs") / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA ds")
    con.execute(TABLE)
    con.close()
    eng = DuckDBEngine(path)
    yield eng
    eng.close()


def _request(partitioning: Partitioning, where: str | None = None) -> ScanRequest:
    keys = partition_key_sql(partitioning)
    return ScanRequest(
        "ds",
        "events",
        columns=("id", "at_tz", "at_naive", "day", "kind"),
        extra=keys,
        filter=where,
        order_by=tuple(keys),
    )


def _rows(reader: pa.RecordBatchReader) -> list[tuple[Any, ...]]:
    table = reader.read_all()
    return [tuple(r.values()) for r in table.to_pylist()]


@pytest.mark.parametrize(
    ("column", "granularity", "where"),
    [
        ("at_tz", "hourly", None),
        ("at_naive", "hourly", "id % 5 <> 0"),
        ("at_naive", "monthly", None),
        ("day", "daily", None),
        ("date(at_tz)", "daily", None),
    ],
)
def test_folder_by_folder_equals_one_sorted_scan(
    engine: DuckDBEngine, column: str, granularity: Granularity, where: str | None
) -> None:
    partitioning = Partitioning(column, granularity, (SubPartition("kind", "kind"),))
    request = _request(partitioning, where)
    assert folder_scan.worth_it(engine, partitioning, request)
    tops = engine.aggregate(request, {"tops": folder_scan.TOPS_SQL})["tops"]
    assert None in tops and len(tops) >= 3
    requests = folder_scan.folder_requests(
        request, partitioning, engine.schema("ds", "events"), tops
    )
    assert len(requests) == len(tops)
    assert all(r.order_by == ("__dp_k1",) for r in requests)
    split = _rows(folder_scan.scan_by_folder(engine, requests))
    whole = _rows(engine.scan(request))
    assert Counter(split) == Counter(whole)
    assert len(split) == engine.count(request)
    # each folder's rows arrive together, folders in order, NULL last
    folders = [(r[-2], r[-1]) for r in split]
    runs = [f for i, f in enumerate(folders) if i == 0 or folders[i - 1] != f]
    assert len(runs) == len(set(runs))
    assert [t for t, _ in runs if t is not None] == sorted(t for t, _ in runs if t is not None)
    assert runs[-1][0] is None


def test_boundary_rows_land_in_their_own_hour(engine: DuckDBEngine) -> None:
    partitioning = Partitioning("at_tz", "hourly")
    request = _request(partitioning)
    tops = engine.aggregate(request, {"tops": folder_scan.TOPS_SQL})["tops"]
    requests = folder_scan.folder_requests(
        request, partitioning, engine.schema("ds", "events"), tops
    )
    rows = _rows(folder_scan.scan_by_folder(engine, requests))
    folder = {r[0]: r[-1] for r in rows}
    assert folder[20000] == "2025/09/16/00"
    assert folder[20001] == "2025/09/15/23"
    assert folder[20002] is None


def test_no_split_under_a_per_key_window_or_for_few_rows(engine: DuckDBEngine) -> None:
    partitioning = Partitioning("at_tz", "hourly")
    request = _request(partitioning)
    newest = ScanRequest("ds", "events", newest_by=("kind",), newest_order="id")
    assert not folder_scan.worth_it(engine, partitioning, newest)
    assert not folder_scan.worth_it(engine, Partitioning(None), request)
    assert folder_scan.should_split(["2025/09/16/00"] * 4, 4 * folder_scan.MIN_ROWS_PER_FOLDER)
    assert not folder_scan.should_split(["2025/09/16/00"] * 4, 100)
    assert not folder_scan.should_split([], 10**9)
    many: list[str | None] = ["k"] * (folder_scan.MAX_FOLDERS + 1)
    assert not folder_scan.should_split(many, 10**12)


def test_month_bounds_roll_over_the_year() -> None:
    assert layout.time_folder_bounds("2025/12", "monthly")[1].isoformat() == "2026-01-01T00:00:00"
    assert (
        layout.time_folder_bounds("2025/03/31/23", "hourly")[1].isoformat() == "2025-04-01T00:00:00"
    )
