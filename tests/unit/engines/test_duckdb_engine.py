"""The DuckDB engine against small crafted warehouses."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from dpexport.engines.base import ScanRequest, Slice
from dpexport.engines.duckdb import DuckDBEngine
from dpexport.errors import InvalidArgument, NotFound

T0 = datetime(2025, 9, 16, 0, 0, 0)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("wh") / "wh.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA ds")
    con.execute(
        """CREATE TABLE ds.types (
             d DECIMAL(18, 2), ts TIMESTAMP, tz TIMESTAMPTZ, dt DATE, b BOOLEAN, i BIGINT,
             f DOUBLE, s VARCHAR, bl BLOB, l VARCHAR[], st STRUCT(a INTEGER, b VARCHAR))"""
    )
    con.execute(
        "INSERT INTO ds.types VALUES (1.25, TIMESTAMP '2025-01-01 10:00:00', "
        "TIMESTAMPTZ '2025-01-01 10:00:00+00', DATE '2025-01-01', true, 7, 1.5, 'x', "
        "'\\xAA'::BLOB, ['a', 'b'], {'a': 1, 'b': 'y'})"
    )
    # 10,000 readings, one a minute; 3 readings per (equipment_id, k) key
    con.execute(
        """CREATE TABLE ds.readings AS
           SELECT i AS id, 1000 + (i % 250) AS equipment_id, i % 3 AS k,
                  TIMESTAMP '2025-09-16 00:00:00' + to_minutes(i) AS created_at,
                  'name ' || i AS name, i * 0.5 AS value
           FROM range(10000) r(i)"""
    )
    con.execute("CREATE TABLE ds.quotes (id INTEGER, s VARCHAR)")
    con.execute("INSERT INTO ds.quotes VALUES (1, 'it''s'), (2, 'plain'), (3, 'a\"b')")
    con.close()
    return path


@pytest.fixture
def engine(warehouse: Path) -> Iterator[DuckDBEngine]:
    eng = DuckDBEngine(warehouse, memory_limit="256MB", threads=2)
    yield eng
    eng.close()


def read(engine: DuckDBEngine, request: ScanRequest) -> pa.Table:
    return engine.scan(request).read_all()


def test_schema_maps_types_exactly(engine: DuckDBEngine) -> None:
    schema = engine.schema("ds", "types")
    expected = {
        "d": pa.decimal128(18, 2),
        "ts": pa.timestamp("us"),
        "tz": pa.timestamp("us", tz="UTC"),
        "dt": pa.date32(),
        "b": pa.bool_(),
        "i": pa.int64(),
        "f": pa.float64(),
        "s": pa.string(),
        "bl": pa.binary(),
    }
    assert schema.names == [*expected, "l", "st"]
    for name, typ in expected.items():
        assert schema.field(name).type == typ, name
    assert pa.types.is_list(schema.field("l").type)
    assert schema.field("l").type.value_type == pa.string()
    assert schema.field("st").type == pa.struct([("a", pa.int32()), ("b", pa.string())])


def test_scan_schema_equals_schema(engine: DuckDBEngine) -> None:
    reader = engine.scan(ScanRequest("ds", "types"))
    table = reader.read_all()
    assert reader.schema.equals(engine.schema("ds", "types"))
    assert table.schema.equals(engine.schema("ds", "types"))
    row = table.to_pylist()[0]
    assert row["d"] == Decimal("1.25")
    assert row["tz"] == datetime(2025, 1, 1, 10, tzinfo=UTC)


def test_scan_streams_batches(engine: DuckDBEngine) -> None:
    reader = engine.scan(ScanRequest("ds", "readings", batch_rows=1000))
    assert isinstance(reader, pa.RecordBatchReader)
    sizes = [batch.num_rows for batch in reader]
    assert len(sizes) >= 5
    assert max(sizes) <= 1000
    assert sum(sizes) == 10_000


def test_abandoned_reader_frees_its_cursor(engine: DuckDBEngine) -> None:
    reader = engine.scan(ScanRequest("ds", "readings", batch_rows=100))
    next(iter(reader))
    reader.close()
    assert engine.count(ScanRequest("ds", "readings")) == 10_000


def test_table_exists(engine: DuckDBEngine) -> None:
    assert engine.table_exists("ds", "readings")
    assert not engine.table_exists("ds", "nope")
    assert not engine.table_exists("nope", "readings")


@pytest.mark.parametrize(
    ("cursor", "lower", "upper", "expected_ids"),
    [
        ("created_at", T0 + timedelta(minutes=10), T0 + timedelta(minutes=20), range(11, 21)),
        ("id", 10, 20, range(11, 21)),
        ("id", None, 3, range(0, 4)),
        ("id", 9996, None, range(9997, 10000)),
        # an aware bound compares as its UTC wall-clock time
        (
            "created_at",
            datetime(2025, 9, 16, 2, 0, tzinfo=timezone(timedelta(hours=2))),
            T0 + timedelta(minutes=2),
            range(1, 3),
        ),
    ],
)
def test_slice_bounds_exclusive_lower_inclusive_upper(
    engine: DuckDBEngine, cursor: str, lower: object, upper: object, expected_ids: range
) -> None:
    req = ScanRequest("ds", "readings", slice=Slice(cursor, lower, upper), order_by=("id",))
    assert read(engine, req).column("id").to_pylist() == list(expected_ids)
    assert engine.count(req) == len(expected_ids)


def test_slice_on_dates(engine: DuckDBEngine) -> None:
    req = ScanRequest(
        "ds", "readings", slice=Slice("created_at::DATE", date(2025, 9, 16), date(2025, 9, 17))
    )
    assert engine.count(req) == 1440  # exactly Sept 17


def test_extra_columns(engine: DuckDBEngine) -> None:
    req = ScanRequest(
        "ds",
        "readings",
        columns=("id", "equipment_id", "created_at"),
        extra={"shard": "equipment_id % 100", "day": "date(created_at)"},
        slice=Slice("id", 1438, 1442),
        order_by=("id",),
    )
    table = read(engine, req)
    assert table.column_names == ["id", "equipment_id", "created_at", "shard", "day"]
    for row in table.to_pylist():
        assert row["shard"] == row["equipment_id"] % 100
        assert row["day"] == row["created_at"].date()
    assert table.column("day").to_pylist()[-1] == date(2025, 9, 17)


def test_exclude_drops_columns(engine: DuckDBEngine) -> None:
    table = read(engine, ScanRequest("ds", "readings", exclude=("name", "value")))
    assert table.column_names == ["id", "equipment_id", "k", "created_at"]
    cols = ScanRequest("ds", "readings", columns=("id", "name"), exclude=("name",))
    assert read(engine, cols).column_names == ["id"]


def test_filter_and_bound_string_with_quote(engine: DuckDBEngine) -> None:
    req = ScanRequest("ds", "quotes", slice=Slice("s", None, "it's"), order_by=("id",))
    # 'a"b' < "it's" and "it's" <= "it's"; 'plain' is greater
    assert read(engine, req).column("id").to_pylist() == [1, 3]
    filtered = ScanRequest("ds", "quotes", filter="s <> 'plain'", order_by=("id",))
    assert read(engine, filtered).column("s").to_pylist() == ["it's", 'a"b']


def test_dedupe_by_keeps_first_row_per_key(engine: DuckDBEngine) -> None:
    req = ScanRequest(
        "ds", "readings", slice=Slice("created_at"), dedupe_by=("equipment_id",), order_by=("id",)
    )
    table = read(engine, req)
    assert table.num_rows == 250
    assert table.column("id").to_pylist() == list(range(250))  # the earliest of each key


def test_dedupe_by_composite_key(engine: DuckDBEngine) -> None:
    req = ScanRequest("ds", "readings", slice=Slice("id"), dedupe_by=("equipment_id", "k"))
    table = read(engine, req)
    keys = list(zip(*(table.column(c).to_pylist() for c in ("equipment_id", "k")), strict=True))
    assert len(keys) == len(set(keys)) == 750
    assert engine.count(req) == 750


def test_newest_by_keeps_newest_row_per_key(engine: DuckDBEngine) -> None:
    req = ScanRequest("ds", "readings", newest_by=("equipment_id", "k"), newest_order="created_at")
    table = read(engine, req)
    assert table.num_rows == 750
    newest = {(r["equipment_id"], r["k"]): r["id"] for r in table.to_pylist()}
    # the largest id with each (equipment_id % 250, id % 3) key
    for (eq, k), ident in list(newest.items())[:50]:
        later = [i for i in range(ident + 1, 10000) if 1000 + i % 250 == eq and i % 3 == k]
        assert later == []


def test_dedupe_and_newest_together(engine: DuckDBEngine) -> None:
    req = ScanRequest(
        "ds",
        "readings",
        slice=Slice("id"),
        dedupe_by=("id",),
        newest_by=("equipment_id",),
        newest_order="id",
        order_by=("equipment_id",),
    )
    table = read(engine, req)
    assert table.num_rows == 250
    assert table.column("id").to_pylist()[0] == 9750  # 9750 % 250 == 0


def test_order_by_descending_input(engine: DuckDBEngine) -> None:
    req = ScanRequest(
        "ds",
        "readings",
        extra={"shard": "equipment_id % 100"},
        order_by=("shard", "id"),
        batch_rows=777,
    )
    table = read(engine, req)
    pairs = list(
        zip(table.column("shard").to_pylist(), table.column("id").to_pylist(), strict=True)
    )
    assert pairs == sorted(pairs)


def test_aggregate(engine: DuckDBEngine) -> None:
    req = ScanRequest("ds", "readings", slice=Slice("id", None, 99))
    got = engine.aggregate(
        req, {"max_ts": "max(created_at)", "total": "sum(value)", "n": "count(*)"}
    )
    assert got == {"max_ts": T0 + timedelta(minutes=99), "total": Decimal("2475.0"), "n": 100}


def test_missing_table_is_not_found(engine: DuckDBEngine) -> None:
    with pytest.raises(NotFound) as err:
        engine.scan(ScanRequest("ds", "missing"))
    assert err.value.table == "ds.missing"
    assert "ds.missing" in str(err.value)
    with pytest.raises(NotFound):
        engine.schema("nope", "readings")
    with pytest.raises(NotFound):
        engine.count(ScanRequest("ds", "missing"))


@pytest.mark.parametrize(
    ("request_", "culprit"),
    [
        (
            ScanRequest("ds", "readings", extra={"bad": "equipment_id %% 100"}),
            "equipment_id %% 100",
        ),
        (ScanRequest("ds", "readings", extra={"bad": "nosuchfn(id)"}), "nosuchfn(id)"),
        (ScanRequest("ds", "readings", extra={"bad": "date(id)"}), "date(id)"),
        (ScanRequest("ds", "readings", filter="id >>> 3"), "id >>> 3"),
        (ScanRequest("ds", "readings", slice=Slice("no_col", 1, 2)), "no_col"),
        (
            ScanRequest("ds", "readings", newest_by=("k",), newest_order="created_at +"),
            "created_at +",
        ),
    ],
)
def test_bad_expression_is_invalid_argument(
    engine: DuckDBEngine, request_: ScanRequest, culprit: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        engine.scan(request_).read_all()
    assert culprit in str(err.value)
    assert err.value.table == "ds.readings"


def test_unknown_column_names_nearest(engine: DuckDBEngine) -> None:
    with pytest.raises(InvalidArgument, match="did you mean 'equipment_id'"):
        engine.scan(ScanRequest("ds", "readings", columns=("equipment_idd",)))
    with pytest.raises(InvalidArgument, match="dedupe_by"):
        engine.scan(ScanRequest("ds", "readings", dedupe_by=("nope",)))


def test_second_statement_is_refused(engine: DuckDBEngine, tmp_path: Path) -> None:
    # in parentheses (a filter) a second statement is a syntax error; an expression
    # that closes its own parenthesis makes three statements that parse
    in_filter = ScanRequest("ds", "readings", filter="true; DROP TABLE ds.readings")
    smuggled = ScanRequest(
        "ds", "readings", extra={"x": "1) AS y FROM ds.readings; DROP TABLE ds.readings; SELECT (1"}
    )
    for _ in range(2):  # refused again: only texts that passed are remembered as checked
        for bad, refused in (
            (in_filter, "invalid SQL expression"),
            # dpexport's own check, every time (DuckDB's parse error reads otherwise)
            (smuggled, "^an SQL expression of the request holds more than one statement"),
        ):
            with pytest.raises(InvalidArgument, match=refused):
                engine.scan(bad)
            with pytest.raises(InvalidArgument, match=r"invalid SQL expression|more than one"):
                engine.aggregate(bad, {"n": "count(*)"})  # wrapped in a sub-query
            with pytest.raises(InvalidArgument, match=refused):
                engine.copy(bad, tmp_path / "x.parquet", "FORMAT parquet")
    assert not (tmp_path / "x.parquet").exists()
    assert engine.table_exists("ds", "readings")
    good = ScanRequest("ds", "readings")
    assert engine.count(good) == engine.count(good) == read(engine, good).num_rows > 0


def test_concurrent_scans(engine: DuckDBEngine) -> None:
    results: list[int] = []

    def work() -> None:
        results.append(read(engine, ScanRequest("ds", "readings", batch_rows=500)).num_rows)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [10_000] * 4


def test_read_only_engine_looks_a_table_up_once(engine: DuckDBEngine) -> None:
    # a read-only file's catalog cannot change while it is open: one lookup per table
    first = engine.schema("ds", "quotes")
    assert engine.schema("ds", "quotes") is first
    assert engine.table_exists("ds", "quotes")
    assert not engine.table_exists("ds", "nope")  # absence is asked again, never kept


def test_writable_engine_sees_catalog_changes() -> None:
    with DuckDBEngine(":memory:", read_only=False) as eng:
        assert not eng.table_exists("main", "t")
        eng._con.execute("CREATE TABLE t (a INTEGER)")
        assert eng.table_exists("main", "t")
        assert eng.schema("main", "t").names == ["a"]
        eng._con.execute("ALTER TABLE t ADD COLUMN b VARCHAR")
        assert eng.schema("main", "t").names == ["a", "b"]
        eng._con.execute("DROP TABLE t")
        assert not eng.table_exists("main", "t")


def test_missing_database_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        DuckDBEngine(tmp_path / "absent.duckdb")


def test_filter_reading_a_missing_table_is_invalid(warehouse: Path) -> None:
    with DuckDBEngine(warehouse) as eng, pytest.raises(InvalidArgument, match="filter"):
        eng.count(ScanRequest("ds", "readings", filter="(SELECT count(*) FROM ds.nope) > 0"))


def _limit(engine: DuckDBEngine) -> str:
    cur = engine._cursor()
    try:
        row = cur.execute("SELECT current_setting('memory_limit')").fetchone()
        assert row is not None
        return str(row[0])
    finally:
        cur.close()


def _as_duckdb_shows(size: str) -> str:
    con = duckdb.connect(config={"memory_limit": size})
    try:
        row = con.execute("SELECT current_setting('memory_limit')").fetchone()
        assert row is not None
        return str(row[0])
    finally:
        con.close()


def test_a_plain_scan_streams_under_the_small_limit_and_gives_it_back(
    warehouse: Path, tmp_path: Path
) -> None:
    import gc
    import shutil

    full, lean = _as_duckdb_shows("256MB"), _as_duckdb_shows("32MiB")
    assert full != lean
    with DuckDBEngine(warehouse, memory_limit="256MB") as eng:
        assert _limit(eng) == full
        plain = ScanRequest("ds", "readings", batch_rows=1000)
        reader = eng.scan(plain)
        first = reader.read_next_batch()
        assert _limit(eng) == lean  # while it streams
        rest = reader.read_all()
        assert first.num_rows + rest.num_rows == 10_000
        assert _limit(eng) == full  # drained
        # two at once: the limit comes back when the last one ends
        a, b = eng.scan(plain), eng.scan(plain)
        a.read_all()
        assert _limit(eng) == lean
        b.read_all()
        assert _limit(eng) == full
        # a sort or a window keeps the whole limit: it may need it
        ordered = eng.scan(ScanRequest("ds", "readings", order_by=("id",), batch_rows=1000))
        ordered.read_next_batch()
        assert _limit(eng) == full
        # pyarrow's close() keeps the Python generator behind the reader: the sort's
        # statement ends when the reader is dropped (the finalizer), as exports drop it
        ordered.close()
        del ordered
        gc.collect()
        # a reader dropped before its first batch gives the limit back too
        dropped = eng.scan(plain)
        assert _limit(eng) == lean
        del dropped
        gc.collect()
        assert _limit(eng) == full
    # a limit already under 32MB is left alone (a copy: DuckDB keeps one configuration
    # per open database file in a process)
    small = shutil.copy(warehouse, tmp_path / "small.duckdb")
    with DuckDBEngine(small, memory_limit="32MB") as eng:
        reader = eng.scan(ScanRequest("ds", "readings", batch_rows=1000))
        reader.read_next_batch()
        assert _limit(eng) == _as_duckdb_shows("32MB")
        reader.close()


def test_the_streaming_limit_grows_with_the_columns_scanned(tmp_path: Path) -> None:
    """Each of DuckDB's threads pins blocks of every column it scans: the lowered limit
    is columns x threads x 512 KiB (a nested field counts each of its columns), added
    over the scans streaming at once, never over the whole limit."""
    path = tmp_path / "wide.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA ds")
        con.execute(
            "CREATE TABLE ds.wide AS SELECT "
            + ", ".join(f"i + {k} AS c{k}" for k in range(99))
            + ", {'a': i, 'b': 'x'} AS s FROM range(5000) t(i)"
        )
    with DuckDBEngine(path, memory_limit="256MB", threads=2) as eng:
        plain = ScanRequest("ds", "wide", batch_rows=1000)
        first = eng.scan(plain)
        first.read_next_batch()
        assert _limit(eng) == _as_duckdb_shows("101MiB")  # 99 + 2 struct fields
        second = eng.scan(plain)
        second.read_next_batch()
        assert _limit(eng) == _as_duckdb_shows("202MiB")
        third = eng.scan(plain)
        third.read_next_batch()
        assert _limit(eng) == _as_duckdb_shows("256MB")  # 303 MiB: the whole limit
        for reader in (first, second, third):
            assert reader.read_all().num_rows == 4000
        assert _limit(eng) == _as_duckdb_shows("256MB")
        narrow = eng.scan(ScanRequest("ds", "wide", columns=("c0", "c1"), batch_rows=1000))
        narrow.read_next_batch()
        assert _limit(eng) == _as_duckdb_shows("32MiB")  # at least STREAM_MEMORY_LIMIT
        narrow.read_all()


def test_copy_schema_is_asked_once_per_request_shape_on_a_read_only_file(
    warehouse: Path, tmp_path: Path
) -> None:
    options = "FORMAT parquet, COMPRESSION snappy"
    none = ScanRequest("ds", "readings", filter="false")
    with DuckDBEngine(warehouse) as eng:
        first = eng.copy_schema(none, tmp_path / "probe.parquet", options)
        assert first.names == ["id", "equipment_id", "k", "created_at", "name", "value"]
        assert not (tmp_path / "probe.parquet").exists()  # the probe file is gone
        # asked again: answered without a COPY (this target's folder does not exist)
        again = eng.copy_schema(none, tmp_path / "missing" / "probe.parquet", options)
        assert again.equals(first)
        # other options are another question
        with pytest.raises(Exception, match="missing"):
            eng.copy_schema(
                none, tmp_path / "missing" / "p.parquet", options + ", ROW_GROUP_SIZE 10"
            )
    # a writable database can change between two calls: it is asked every time
    writable = duckdb.connect(str(tmp_path / "rw.duckdb"))
    writable.execute("CREATE SCHEMA ds; CREATE TABLE ds.t AS SELECT 1 AS a")
    writable.close()
    with DuckDBEngine(tmp_path / "rw.duckdb", read_only=False) as eng:
        request = ScanRequest("ds", "t", filter="false")
        assert eng.copy_schema(request, tmp_path / "p1.parquet", options).names == ["a"]
        with pytest.raises(Exception, match="missing"):
            eng.copy_schema(request, tmp_path / "missing" / "p2.parquet", options)
