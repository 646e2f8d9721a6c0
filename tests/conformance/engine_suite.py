"""One conformance suite for the Engine interface; every engine's test module subclasses
``EngineSuite``, loads :data:`ROWS` into ``conformance.events`` with the column types of
:data:`SCHEMA` and provides the ``open_engine`` fixture (fsspec's pattern, as
``store_suite``).

The table is small and crafted: DECIMAL values at the edge of NUMERIC's precision,
microsecond TIMESTAMPs in UTC, a wall-clock DATETIME, DATEs, Unicode and empty
strings, JSON, a list and a struct, NULLs (one row with a NULL cursor), keys that
repeat. Every test asserts the values a user would check in the exported files; what
an engine answers for itself (its name, whether it reads by folder, which columns it
reports NOT NULL) is a class attribute of its module, a table of expected results per
engine (sqlglot's pattern).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pyarrow as pa
import pytest

from dpexport.config import load_config
from dpexport.config.spec import Partitioning, TableSpec
from dpexport.engines.base import Engine, ScanRequest, Slice
from dpexport.engines.duckdb_layout import partition_key_sql
from dpexport.errors import InvalidArgument, NotFound
from dpexport.planning import folder_scan

DATASET = "conformance"
TABLE = "events"
CURSOR = '"happened_at"'  # the cursor's SQL, as the planner writes a bare column

#: the Arrow types every engine reports for the table (and scans it as), in table order
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),  # NOT NULL where the engine says so (``not_nullable``)
        ("amount", pa.decimal128(38, 9)),
        ("happened_at", pa.timestamp("us", tz="UTC")),
        ("day", pa.date32()),
        ("name", pa.string()),
        ("payload", pa.string()),  # JSON, as its text
        ("tags", pa.list_(pa.string())),
        ("place", pa.struct([("city", pa.string()), ("zip", pa.int64())])),
        ("local_at", pa.timestamp("us")),  # a wall-clock time, no zone
        ("key", pa.string()),
    ]
)


def _at(hour: int, minute: int = 0, micro: int = 0) -> datetime:
    return datetime(2025, 9, 16, hour, minute, 0, micro, tzinfo=UTC)


#: the rows, as Python values; ``payload`` is JSON text, compared parsed
ROWS: list[dict[str, Any]] = [
    {
        "id": 1, "amount": Decimal("10.5"), "happened_at": _at(9, 15),
        "day": date(2025, 9, 15), "name": "alpha", "payload": '{"a":1}', "tags": ["x"],
        "place": {"city": "Oslo", "zip": 150}, "local_at": datetime(2025, 9, 16, 11, 15),
        "key": "k1",
    },
    {
        "id": 2, "amount": Decimal("0.000000001"), "happened_at": _at(10),
        "day": date(2025, 9, 16), "name": "bêta", "payload": '{"a":[1,2]}', "tags": [],
        "place": {"city": "Bergen", "zip": 5003}, "local_at": datetime(2025, 9, 16, 12),
        "key": "k2",
    },
    {
        "id": 3, "amount": Decimal("-12345678901234567890.123456789"),
        "happened_at": _at(10, 30, 123456), "day": date(2025, 9, 16), "name": None,
        "payload": None, "tags": ["y", "z"], "place": {"city": None, "zip": None},
        "local_at": None, "key": "k1",
    },
    {
        "id": 4, "amount": Decimal("3"), "happened_at": _at(11), "day": date(2025, 9, 17),
        "name": "it's", "payload": '{"b":null}', "tags": ["x", "x"],
        "place": {"city": "Tromsø", "zip": 9008}, "local_at": datetime(2025, 9, 16, 13),
        "key": "k3",
    },
    {
        "id": 5, "amount": None, "happened_at": _at(12, 45), "day": date(2025, 9, 17),
        "name": "", "payload": "{}", "tags": ["w"], "place": {"city": "Bodø", "zip": 8006},
        "local_at": datetime(2025, 9, 16, 14, 45), "key": "k2",
    },
    {
        "id": 6, "amount": Decimal("7.25"), "happened_at": None, "day": None,
        "name": "late", "payload": '{"c":"ü"}', "tags": ["v"],
        "place": {"city": "Alta", "zip": 9510}, "local_at": None, "key": "k4",
    },
]  # fmt: skip

#: a config whose tables the native writers are asked about (never read)
CONFIG = """\
project: p
environment: test
warehouse: {engine: duckdb, path: w.duckdb}
buckets: {exports: gs://b}
exports:
  - {source: conformance.events, destination: gs://b/events/, format: PARQUET, compression: ZSTD}
  - {source: conformance.lines, destination: gs://b/lines/, format: JSONL, compression: GZIP}
"""


def request(**kwargs: Any) -> ScanRequest:
    """A request on the suite's table."""
    return ScanRequest(DATASET, TABLE, **kwargs)


def rows(reader: pa.RecordBatchReader) -> list[dict[str, Any]]:
    """The reader's rows as Python values, JSON parsed (its text may be normalized)."""
    out = reader.read_all().to_pylist()
    for row in out:
        if row.get("payload") is not None:
            row["payload"] = json.loads(row["payload"])
    return out


def expected(*wanted: int, columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """:data:`ROWS` with these ids, in this order, as :func:`rows` reads them."""
    by_id = {r["id"]: r for r in ROWS}
    out = []
    for i in wanted:
        row = dict(by_id[i])
        if row["payload"] is not None:
            row["payload"] = json.loads(row["payload"])
        out.append({c: row[c] for c in columns} if columns else row)
    return out


def ids(reader: pa.RecordBatchReader) -> list[int]:
    return [int(v) for v in reader.read_all().column("id").to_pylist()]


def window_ids(engine: Engine, window: Slice) -> list[int]:
    """The ids in ``window``, read ordered by id and read as plain columns (on BigQuery
    a query and the Storage Read API): both reads must agree, and with ``count``."""
    ordered = ids(engine.scan(request(slice=window, order_by=("id",))))
    plain = ids(engine.scan(request(slice=window, columns=("id", "happened_at"))))
    assert sorted(plain) == ordered
    assert engine.count(request(slice=window)) == len(ordered)
    return ordered


class ChangingTable(Protocol):
    """A small table of its own that a test changes (the suite's table stays as loaded):
    each module's ``changing`` fixture provides one."""

    def marker(self) -> str:
        """``change_marker`` of the table, asked of a freshly opened engine."""
        ...

    def add_row(self, key: int, name: str) -> None: ...


class EngineSuite:
    """Behaviour every Engine must have."""

    #: what the engine answers for itself (each engine's module sets these)
    name: ClassVar[str]
    stable_reads: ClassVar[bool]
    reads_by_folder: ClassVar[bool]
    exports_per_core: ClassVar[int]
    #: whether the engine can write a slice's files itself (``native_writer``)
    writes_natively: ClassVar[bool] = True
    #: top-level columns the engine reports NOT NULL (BigQuery: REQUIRED and REPEATED)
    not_nullable: ClassVar[frozenset[str]] = frozenset()
    #: whether ``write_export_logs`` keeps the records in the warehouse
    keeps_export_logs: ClassVar[bool] = False

    def logged_exports(self, engine: Engine) -> dict[str, tuple[str, str]]:
        """export_id -> (table_name, status) of the warehouse's export log; engines that
        keep one override this."""
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def engine(cls, open_engine: Callable[[], Engine]) -> Iterator[Engine]:
        eng = open_engine()
        yield eng
        eng.close()

    @pytest.fixture(scope="class")
    @classmethod
    def specs(cls, tmp_path_factory: pytest.TempPathFactory) -> dict[str, TableSpec]:
        path: Path = tmp_path_factory.mktemp("engine-config") / "dpexport.yaml"
        path.write_text(CONFIG, encoding="utf-8")
        config = load_config(path)
        return {t.table: t for t in config.tables}

    # -- what the engine says of itself -----------------------------------------

    def test_answers_for_itself(self, engine: Engine) -> None:
        assert engine.name == self.name
        assert engine.stable_reads is self.stable_reads
        assert engine.reads_by_folder is self.reads_by_folder
        assert engine.exports_per_core == self.exports_per_core

    def test_native_writer_answers_with_reasons(
        self, engine: Engine, specs: dict[str, TableSpec]
    ) -> None:
        writer = engine.native_writer()
        assert (writer is not None) is self.writes_natively
        if writer is None:
            return  # dpexport streams every export of this engine
        assert isinstance(writer.label, str) and writer.label
        plain, lines = specs["events"], specs["lines"]
        kw: dict[str, Any] = {"rows": 10_000, "folders": None, "tops": None}
        # a plain Parquet table on gs:// with nothing to do in Python: the engine writes it
        assert writer.reason(plain, transforms=False, encrypts=False, **kw) is None
        # rows changed or encrypted in dpexport, or a text format: dpexport streams it
        for why in (
            writer.reason(plain, transforms=True, encrypts=False, **kw),
            writer.reason(plain, transforms=False, encrypts=True, **kw),
            writer.reason(lines, transforms=False, encrypts=False, **kw),
        ):
            assert isinstance(why, str) and why.strip()
        assert "encrypted" in str(writer.reason(plain, transforms=False, encrypts=True, **kw))
        assert "JSONL" in str(writer.reason(lines, transforms=False, encrypts=False, **kw))

    def test_native_writer_folder_estimate_is_an_aggregate_it_runs(
        self, engine: Engine, specs: dict[str, TableSpec]
    ) -> None:
        writer = engine.native_writer()
        if writer is None:
            return
        assert writer.folders_sql(specs["events"], []) is None  # no key, nothing to estimate
        sql = writer.folders_sql(specs["events"], ["k"])
        if sql is None:
            return  # the engine needs no estimate to decide
        estimate = engine.aggregate(request(extra={"k": '"key"'}), {"folders": sql})["folders"]
        assert 3 <= int(estimate) <= 5  # four distinct keys, approximately

    # -- catalog --------------------------------------------------------------------

    def test_size_hint_is_the_tables_size_or_none(self, engine: Engine) -> None:
        """What ``run --parallel`` starts largest first by: a positive size for a table
        with rows, None for one the engine cannot size (missing)."""
        hint = engine.size_hint(DATASET, TABLE)
        assert hint == len(ROWS) * len(engine.schema(DATASET, TABLE)), hint
        assert engine.size_hint(DATASET, "no_such_table") is None

    def test_table_exists(self, engine: Engine) -> None:
        assert engine.table_exists(DATASET, TABLE)
        assert not engine.table_exists(DATASET, "no_such_table")
        assert not engine.table_exists("no_such_dataset", TABLE)

    def test_schema_names_and_types(self, engine: Engine) -> None:
        schema = engine.schema(DATASET, TABLE)
        assert schema.names == SCHEMA.names
        for want in SCHEMA:
            got = schema.field(want.name)
            assert got.type == want.type, (want.name, str(got.type))
        assert {f.name for f in schema if not f.nullable} == self.not_nullable

    @pytest.mark.parametrize(
        "call",
        ["schema", "count", "aggregate", "scan"],
    )
    def test_unknown_table_is_not_found(self, engine: Engine, call: str) -> None:
        missing = ScanRequest(DATASET, "no_such_table")
        actions: dict[str, Callable[[], object]] = {
            "schema": lambda: engine.schema(DATASET, "no_such_table"),
            "count": lambda: engine.count(missing),
            "aggregate": lambda: engine.aggregate(missing, {"n": "count(*)"}),
            "scan": lambda: engine.scan(missing).read_all(),
        }
        with pytest.raises(NotFound) as err:
            actions[call]()
        assert err.value.table == f"{DATASET}.no_such_table"
        assert err.value.code == "NOT_FOUND"

    def test_unknown_dataset_is_not_found(self, engine: Engine) -> None:
        with pytest.raises(NotFound) as err:
            engine.schema("no_such_dataset", TABLE)
        assert err.value.table == f"no_such_dataset.{TABLE}"

    def test_unknown_column_is_invalid_argument(self, engine: Engine) -> None:
        for bad in (
            request(columns=("id", "nmae")),
            request(exclude=("nope",)),
            request(dedupe_by=("nope",), slice=Slice(CURSOR)),
            request(order_by=("nope",)),
        ):
            with pytest.raises(InvalidArgument) as err:
                engine.scan(bad).read_all()
            assert err.value.table == f"{DATASET}.{TABLE}"
            assert "unknown column" in str(err.value)

    # -- scans ----------------------------------------------------------------------

    def test_scan_returns_every_row_and_value(self, engine: Engine) -> None:
        reader = engine.scan(request(order_by=("id",)))
        assert reader.schema.equals(engine.schema(DATASET, TABLE))
        assert rows(reader) == expected(1, 2, 3, 4, 5, 6)

    def test_plain_column_scan(self, engine: Engine) -> None:
        """Selected columns only, in the asked order (BigQuery: the Storage Read API)."""
        cols = ("key", "amount", "id", "happened_at", "tags", "place", "local_at", "day")
        reader = engine.scan(request(columns=cols))
        assert reader.schema.names == list(cols)
        for field in reader.schema:
            assert field.type == SCHEMA.field(field.name).type, field.name
        got = sorted(rows(reader), key=lambda r: r["id"])
        assert got == expected(1, 2, 3, 4, 5, 6, columns=cols)

    def test_exclude_keeps_columns_out(self, engine: Engine) -> None:
        reader = engine.scan(request(exclude=("name", "payload"), order_by=("id",)))
        keep = tuple(n for n in SCHEMA.names if n not in ("name", "payload"))
        assert reader.schema.names == list(keep)
        assert rows(reader) == expected(1, 2, 3, 4, 5, 6, columns=keep)

    def test_batches_hold_at_most_batch_rows_in_order(self, engine: Engine) -> None:
        reader = engine.scan(request(columns=("id", "key"), order_by=("key", "id"), batch_rows=2))
        sizes, got = [], []
        for batch in reader:
            sizes.append(batch.num_rows)
            got.extend(batch.column(0).to_pylist())
        assert sum(sizes) == 6 and max(sizes) <= 2
        assert got == [1, 3, 2, 5, 4, 6]  # k1, k1, k2, k2, k3, k4

    def test_order_by_sorts_and_keeps_nulls_together(self, engine: Engine) -> None:
        got = [
            r["day"]
            for r in engine.scan(request(columns=("day",), order_by=("day",)))
            .read_all()
            .to_pylist()
        ]
        present = [d for d in got if d is not None]
        assert present == sorted(present) and len(present) == 5
        assert got.index(None) in (0, len(got) - 1)  # the engine's NULL order, at one end

    def test_extra_columns_are_partition_keys(self, engine: Engine) -> None:
        """The layout's time and sub-partition keys, computed by the engine: the same
        folder text on every engine (``2025/09/16/10``)."""
        parts = Partitioning("happened_at", "hourly")
        extra = {**partition_key_sql(parts, SCHEMA.names), "bucket": '"id" % 2'}
        reader = engine.scan(
            request(columns=("id",), extra=extra, slice=Slice(CURSOR, lower=_at(9)),
                    order_by=("__dp_k0", "id"))
        )  # fmt: skip
        assert reader.schema.names == ["id", "__dp_k0", "bucket"]
        assert reader.schema.field("__dp_k0").type == pa.string()
        assert pa.types.is_integer(reader.schema.field("bucket").type)
        assert [(r["id"], r["__dp_k0"], r["bucket"]) for r in reader.read_all().to_pylist()] == [
            (1, "2025/09/16/09", 1),
            (2, "2025/09/16/10", 0),
            (3, "2025/09/16/10", 1),
            (4, "2025/09/16/11", 0),
            (5, "2025/09/16/12", 1),
        ]

    # -- slices ---------------------------------------------------------------------

    def test_timestamp_window_excludes_lower_includes_upper(self, engine: Engine) -> None:
        assert window_ids(engine, Slice(CURSOR, lower=_at(10), upper=_at(11))) == [3, 4]

    def test_lower_inclusive_window_includes_its_lower_bound(self, engine: Engine) -> None:
        """INCREMENTAL's lookback reads ``lower <= cursor``."""
        window = Slice(CURSOR, lower=_at(10), upper=_at(11), lower_inclusive=True)
        assert window_ids(engine, window) == [2, 3, 4]

    def test_open_ended_windows_skip_null_cursors(self, engine: Engine) -> None:
        assert window_ids(engine, Slice(CURSOR, lower=_at(10, 30))) == [3, 4, 5]
        assert window_ids(engine, Slice(CURSOR, upper=_at(10, 30))) == [1, 2]

    def test_microsecond_bounds_are_exact(self, engine: Engine) -> None:
        third = _at(10, 30, 123456)
        just_before = third.replace(microsecond=123455)
        assert window_ids(engine, Slice(CURSOR, lower=just_before, upper=third)) == [3]
        assert window_ids(engine, Slice(CURSOR, lower=third, upper=third)) == []

    @pytest.mark.parametrize(
        ("window", "want"),
        [
            (Slice('"day"', lower=date(2025, 9, 15), upper=date(2025, 9, 16)), [2, 3]),
            (Slice('"id"', lower=1, upper=3), [2, 3]),
            (Slice('"amount"', lower=Decimal("0"), upper=Decimal("10.5")), [1, 2, 4, 6]),
            (Slice('"key"', lower="k1", upper="k3"), [2, 4, 5]),
        ],
        ids=["date", "int", "decimal", "string"],
    )
    def test_window_on_other_cursor_types(
        self, engine: Engine, window: Slice, want: list[int]
    ) -> None:
        assert window_ids(engine, window) == want

    def test_filter_and_window_together(self, engine: Engine) -> None:
        req = request(
            slice=Slice(CURSOR, lower=_at(9), upper=_at(13)),
            filter="\"name\" IS NOT NULL AND \"name\" <> 'it''s'",
            order_by=("id",),
        )
        assert rows(engine.scan(req)) == expected(1, 2, 5)
        assert engine.count(req) == 3

    def test_empty_window_has_the_table_schema(self, engine: Engine) -> None:
        req = request(slice=Slice(CURSOR, lower=_at(20)), order_by=("id",))
        reader = engine.scan(req)
        assert reader.schema.equals(engine.schema(DATASET, TABLE))
        assert reader.read_all().num_rows == 0
        assert engine.count(req) == 0

    # -- one row per key --------------------------------------------------------------

    def test_dedupe_by_keeps_the_first_row_per_key(self, engine: Engine) -> None:
        req = request(slice=Slice(CURSOR, lower=_at(9)), dedupe_by=("key",), order_by=("key",))
        assert ids(engine.scan(req)) == [1, 2, 4]  # k1: 09:15, k2: 10:00, k3: 11:00
        assert engine.count(req) == 3

    def test_newest_by_keeps_the_newest_row_per_key(self, engine: Engine) -> None:
        req = request(slice=Slice(CURSOR, lower=_at(9)), newest_by=("key",), order_by=("key",))
        assert ids(engine.scan(req)) == [3, 5, 4]  # k1: 10:30, k2: 12:45, k3: 11:00
        by_id = request(newest_by=("key",), newest_order='"id"', order_by=("key",))
        assert ids(engine.scan(by_id)) == [3, 5, 4, 6]

    # -- aggregates: the slice's statistics ------------------------------------------

    def test_slice_statistics(self, engine: Engine) -> None:
        """What ``plan`` and ``run`` ask of a slice: its rows and cursor min/max."""
        window = Slice(CURSOR, lower=_at(10), upper=_at(13))
        stats = engine.aggregate(
            request(slice=window),
            {"n": "count(*)", "lo": f"min({CURSOR})", "hi": f"max({CURSOR})"},
        )
        assert set(stats) == {"n", "lo", "hi"}
        assert stats["n"] == 3
        assert stats["lo"] == _at(10, 30, 123456)  # an aware datetime: the same instant
        assert stats["hi"] == _at(12, 45)
        assert stats["lo"].utcoffset() is not None

    def test_aggregates_of_every_type(self, engine: Engine) -> None:
        stats = engine.aggregate(
            request(),
            {
                "total": 'sum("amount")',
                "first_day": 'min("day")',
                "last_local": 'max("local_at")',
                "nulls": 'coalesce(sum(CASE WHEN "name" IS NULL THEN 1 ELSE 0 END), 0)',
                "keys": 'count(DISTINCT "key")',
                "null_cursors": f"count(*) - count({CURSOR})",
            },
        )
        assert stats["total"] == Decimal("-12345678901234567869.373456788")
        assert stats["first_day"] == date(2025, 9, 15)
        assert stats["last_local"] == datetime(2025, 9, 16, 14, 45)
        assert (stats["nulls"], stats["keys"], stats["null_cursors"]) == (1, 4, 1)

    def test_aggregate_of_an_empty_slice(self, engine: Engine) -> None:
        stats = engine.aggregate(
            request(slice=Slice(CURSOR, lower=_at(20))),
            {"n": "count(*)", "lo": f"min({CURSOR})", "hi": f"max({CURSOR})"},
        )
        assert stats == {"n": 0, "lo": None, "hi": None}
        assert engine.aggregate(request(), {}) == {}

    def test_aggregate_sees_the_output_columns(self, engine: Engine) -> None:
        """Over the request's rows after its window and extras, as the checks use it."""
        req = request(
            columns=("id",), extra={"bucket": '"id" % 2'}, newest_by=("key",),
            slice=Slice(CURSOR, lower=_at(9)),
        )  # fmt: skip
        stats = engine.aggregate(req, {"n": "count(*)", "odd": 'sum("bucket")'})
        assert stats == {"n": 3, "odd": 2}  # ids 3, 5, 4

    # -- reading folder by folder ----------------------------------------------------

    def test_distinct_lists_the_first_key_tuples_in_order(self, engine: Engine) -> None:
        keys = {"k": '"key"', "d": '"day"'}
        every = engine.distinct(request(extra=keys), ("k", "d"), 100)
        assert every == [
            ("k1", date(2025, 9, 15)), ("k1", date(2025, 9, 16)), ("k2", date(2025, 9, 16)),
            ("k2", date(2025, 9, 17)), ("k3", date(2025, 9, 17)), ("k4", None),
        ]  # fmt: skip
        assert engine.distinct(request(extra=keys), ("k", "d"), 2) == every[:2]
        # NULLs last, and the slice applies
        assert engine.distinct(request(extra={"d": '"day"'}), ("d",), 10)[-1] == (None,)
        sliced = request(extra=keys, slice=Slice(CURSOR, lower=_at(10), upper=_at(11)))
        assert engine.distinct(sliced, ("k",), 10) == [("k1",), ("k3",)]

    def test_reads_by_folder(self, engine: Engine) -> None:
        """An engine that reads a slice a query per top-level folder lists the folders
        with ``folder_scan.TOPS_SQL`` and reads exactly the slice's rows that way; one
        that does not is never asked to."""
        parts = Partitioning("happened_at", "hourly")
        keys = partition_key_sql(parts, SCHEMA.names)
        whole = request(extra=keys, slice=Slice(CURSOR, lower=_at(9)), order_by=("__dp_k0",))
        # the planner asks the engine, never its name
        assert folder_scan.worth_it(engine, parts, whole) is self.reads_by_folder
        if not engine.reads_by_folder:
            return  # one query per slice: nothing more is promised
        tops = engine.aggregate(whole, {"tops": folder_scan.TOPS_SQL})["tops"]
        assert sorted(tops) == ["2025/09/16/09", "2025/09/16/10", "2025/09/16/11", "2025/09/16/12"]
        schema = engine.schema(DATASET, TABLE)
        reader = folder_scan.scan_by_folder(
            engine, folder_scan.folder_requests(whole, parts, schema, tops)
        )
        assert sorted(ids(reader)) == [1, 2, 3, 4, 5]

    # -- change markers (``on_change`` schedules) ---------------------------------------

    def test_change_marker_holds_while_nothing_changes(self, engine: Engine) -> None:
        first = engine.change_marker(DATASET, TABLE)
        assert isinstance(first, str) and first
        assert engine.change_marker(DATASET, TABLE) == first
        assert engine.count(request()) == 6  # asking reads nothing into the table

    def test_change_marker_of_a_missing_table_is_not_found(self, engine: Engine) -> None:
        with pytest.raises(NotFound):
            engine.change_marker(DATASET, "no_such_table")

    def test_change_marker_moves_when_rows_are_added(self, changing: ChangingTable) -> None:
        before = changing.marker()
        changing.add_row(2, "two")
        after = changing.marker()
        assert after != before
        assert changing.marker() == after
        changing.add_row(3, "three")
        assert changing.marker() not in (before, after)

    # -- export logs and closing --------------------------------------------------------

    def test_write_export_logs(self, engine: Engine) -> None:
        export_id = f"exp_conformance_{self.name}"
        record = {
            "export_id": export_id, "table_name": TABLE, "dataset": DATASET,
            "status": "SUCCESS", "export_timestamp": "2025-09-16T12:00:00Z",
            "logical_time": "2025-09-16T00:00:00Z", "mode": "FULL_REFRESH",
            "format": "PARQUET", "compression": "ZSTD", "destination": "gs://b/events/",
            "rows": 6, "files": 1, "duration_ms": 12, "trigger": "scheduled",
            "error": None, "retry_count": 0, "manifests": ["gs://b/events/m.json"],
        }  # fmt: skip
        engine.write_export_logs([])  # nothing to write: no call, no error
        engine.write_export_logs([record])
        if self.keeps_export_logs:
            assert self.logged_exports(engine)[export_id] == (TABLE, "SUCCESS")
        assert engine.count(request()) == 6  # the source table is untouched

    def test_close_is_idempotent(self, open_engine: Callable[[], Engine]) -> None:
        eng = open_engine()
        assert eng.count(request()) == 6
        eng.close()
        eng.close()
