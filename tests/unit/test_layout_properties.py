"""Properties of ``storage.layout``, the one module of key shapes: every key it builds
parses back to its parts, folder names are safe and keep values apart, time folders,
their bounds, labels and depths agree for every granularity (and with the SQL the
engines render them with), and keys of distinct exports never meet."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dpexport.config.spec import Granularity, Partitioning, SubPartition
from dpexport.engines.duckdb_layout import partition_key_sql, time_sql
from dpexport.storage import layout

GRANULARITIES: tuple[Granularity, ...] = ("hourly", "daily", "monthly")
#: names that go into keys: no '/', not empty (anything else, '_' and '.' included)
NAMES = st.text(st.characters(exclude_characters="/"), min_size=1)
#: a dataset name: no '.' either (keys join ``{dataset}.{table}``)
DATASETS = st.text(st.characters(exclude_characters="/."), min_size=1)
#: tiny alphabets, so that near-misses (a '.' or '_' moved between parts) are tried
TINY = st.text("ab_.", min_size=1, max_size=3)
TINY_DATASETS = st.text("ab_", min_size=1, max_size=3)
TINY_DEST_KEYS = st.lists(st.text("ab._", min_size=1, max_size=2), max_size=2).map(
    lambda parts: "".join(p + "/" for p in parts)
)
HEX8 = st.text("0123456789abcdef", min_size=8, max_size=8)
#: export starts whose years strftime pads to four digits
STARTS = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31))
EXPORT_IDS = st.builds(layout.export_id, STARTS, HEX8)
SUFFIXES = st.builds(
    layout.file_suffix,
    st.sampled_from(["PARQUET", "JSONL", "CSV"]),
    st.sampled_from(["SNAPPY", "ZSTD", "GZIP", "BROTLI", "NONE"]),
    encrypted=st.booleans(),
)
VALUES = st.none() | st.text() | st.integers() | st.sampled_from(["", ".", "..", "_null_", "%"])


def _decode_segment(segment: str) -> str | None:
    """The inverse of ``safe_segment``, as its docstring proves one exists."""
    if segment == layout.NULL_SEGMENT:
        return None
    if segment == layout.EMPTY_SEGMENT:
        return ""
    return unquote(segment, errors="strict")


# -- folder names ----------------------------------------------------------------------------
@given(VALUES)
@example("_")
@example("..")
@example("é" * 300)
def test_safe_segment_round_trips_and_stays_one_safe_name(value: object) -> None:
    segment = layout.safe_segment(value)
    assert segment and "/" not in segment and not segment.startswith(".")
    assert segment.isascii() and segment.isprintable() and len(segment) <= 255
    if "!" in segment:  # a long value: its start, then its sha256 (test_layout_segments)
        return
    assert _decode_segment(segment) == (None if value is None else str(value))
    if value is not None and str(value) != "":
        assert not segment.startswith("_")  # the markers' first character is theirs


@given(VALUES, VALUES)
@example(None, "_null_")
@example("", "_empty_")
def test_safe_segment_is_injective_on_texts(a: object, b: object) -> None:
    text_a = None if a is None else str(a)
    text_b = None if b is None else str(b)
    assert (layout.safe_segment(a) == layout.safe_segment(b)) == (text_a == text_b)


# -- time folders ----------------------------------------------------------------------------
_LABELS = {"hourly": "%Y-%m-%dT%H", "daily": "%Y-%m-%d", "monthly": "%Y-%m"}


@given(STARTS, st.sampled_from(GRANULARITIES))
def test_time_folder_bounds_label_and_depth_agree(t: datetime, granularity: Granularity) -> None:
    folder = layout.time_folder(t, granularity)
    start, end = layout.time_folder_bounds(folder, granularity)
    assert start <= t < end or end.year > 9999
    assert layout.time_folder(start, granularity) == folder
    assert layout.partition_label(folder) == t.strftime(_LABELS[granularity])
    part = Partitioning(time_expression="t", granularity=granularity)
    assert layout.top_folder(part, folder) == folder
    assert layout.top_folder(part, folder + "/x/y") == folder
    assert layout.folder_for(part, t, {layout.TIME_KEY: folder}) == (folder, "")


@given(STARTS, st.sampled_from(GRANULARITIES))
def test_a_folder_begins_where_the_previous_one_ends(t: datetime, granularity: Granularity) -> None:
    end = layout.time_folder_bounds(layout.time_folder(t, granularity), granularity)[1]
    if end.year <= 9999:
        following = layout.time_folder(end, granularity)
        assert layout.time_folder_bounds(following, granularity)[0] == end


def test_a_null_time_is_its_own_top_folder() -> None:
    part = Partitioning(time_expression="t", granularity="hourly")
    assert layout.top_folder(part, layout.NULL_SEGMENT + "/a") == layout.NULL_SEGMENT
    assert layout.partition_label(layout.NULL_SEGMENT) == layout.NULL_SEGMENT


@given(STARTS, st.lists(VALUES, max_size=3))
def test_without_a_time_expression_rows_go_to_the_logical_day(
    t: datetime, values: list[object]
) -> None:
    part = Partitioning(
        sub_partitions=tuple(SubPartition(f"s{i}", "x") for i in range(len(values)))
    )
    keys = {layout.key_column(i): v for i, v in enumerate(values, start=1)}
    top, sub = layout.folder_for(part, t, keys)
    assert top == layout.time_folder(t, "daily") == layout.top_folder(part, f"{top}/{sub}")
    segments = sub.split("/") if sub else []
    assert segments == [layout.safe_segment(v) for v in values]
    for segment, v in zip(segments, values, strict=True):
        if "!" not in segment:  # not a long value's start and sha256
            assert _decode_segment(segment) == (None if v is None else str(v))


_DUCKDB: list[duckdb.DuckDBPyConnection] = []


@settings(max_examples=60, deadline=None)
@given(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31, 23)),
    st.sampled_from(GRANULARITIES),
)
def test_the_engine_sql_renders_the_same_folder(t: datetime, granularity: Granularity) -> None:
    if not _DUCKDB:
        _DUCKDB.append(duckdb.connect())
    row = _DUCKDB[0].execute(f"SELECT {time_sql('$t', granularity)}", {"t": t}).fetchone()
    assert row is not None
    assert row[0] == layout.time_folder(t, granularity)


def test_the_key_columns_are_layouts() -> None:
    part = Partitioning(
        time_expression="t", granularity="daily", sub_partitions=(SubPartition("a", "x"),)
    )
    assert list(partition_key_sql(part)) == [layout.TIME_KEY, layout.key_column(1)]
    assert all(k.startswith(layout.KEY_COLUMN_PREFIX) for k in partition_key_sql(part))


# -- files -----------------------------------------------------------------------------------
@given(NAMES, STARTS, HEX8, st.none() | st.integers(min_value=1, max_value=10**5), SUFFIXES)
@example("a_20250916_143022_deadbeef", datetime(2025, 9, 16), "0badcafe", 12, "csv")
@example("x.parquet", datetime(2025, 9, 16), "01234567", None, "parquet.snappy")
def test_data_filenames_parse_back(
    entity: str, start: datetime, uuid8: str, seq: int | None, suffix: str
) -> None:
    name = layout.data_filename(entity, start, uuid8, seq, suffix)
    assert layout.parse_data_filename(name) == layout.DataFileName(
        entity, layout.stamp(start), uuid8, seq, suffix
    )
    assert layout.is_data_file(name) and not layout.is_manifest(name)
    assert not layout.is_data_file(layout.sidecar_name(name))


@given(STARTS, st.none() | HEX8)
def test_manifests_are_manifests_not_data(start: datetime, uuid8: str | None) -> None:
    name = layout.manifest_name(start, uuid8)
    assert layout.is_manifest(name) and not layout.is_data_file(name)
    assert layout.parse_data_filename(name) is None


@given(st.lists(NAMES, max_size=4).map("/".join), NAMES)
def test_a_key_is_its_folder_and_its_name(folder: str, name: str) -> None:
    key = layout.folder_key("", folder) + name if folder else name
    assert layout.key_folder(key) + layout.key_name(key) == key
    assert layout.key_name(key) == name
    assert layout.key_folder(key) == (folder + "/" if folder else "")


# -- staging, tokens, leases, the DLQ, logs --------------------------------------------------
@given(EXPORT_IDS, st.sampled_from(["", layout.STAGING_OWNER, layout.STAGING_JOURNAL, "a/b"]))
def test_staging_keys_name_their_export(export_id: str, name: str) -> None:
    key = layout.staging_prefix(export_id) + name
    assert layout.staged_export_id(key) == export_id
    assert layout.staged_export_id(layout.key_folder(key)) == export_id
    assert layout.staged_export_id(export_id) is None


@given(NAMES, st.datetimes(timezones=st.just(UTC)), HEX8)
@example("a_b_1", datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), "00000000")
def test_tokens_parse_back(table: str, at: datetime, config_hash: str) -> None:
    name = layout.token_name(table, at, config_hash)
    parsed = layout.TokenName(table, at.strftime("%Y%m%d"), int(at.timestamp()), config_hash)
    assert layout.parse_token_name(name) == parsed
    key = layout.token_key(name)
    assert layout.parse_token_key(key) == parsed
    assert layout.is_token_key(key) and not layout.is_lease_key(key)


@given(DATASETS, NAMES)
def test_leases_parse_back(dataset: str, table: str) -> None:
    key = layout.lease_key(dataset, table)
    assert layout.parse_lease_key(key) == (dataset, table)
    assert layout.is_lease_key(key) and not layout.is_token_key(key)
    assert layout.parse_token_key(key) is None


@given(EXPORT_IDS, NAMES)
def test_dlq_keys_parse_back(export_id: str, entity: str) -> None:
    failed = layout.dlq_failed_prefix(export_id)
    for doc in (layout.DLQ_REQUEST, layout.DLQ_ERROR, layout.DLQ_HISTORY):
        assert layout.parse_dlq_key(failed + doc) == layout.DlqKey("failed", export_id, doc)
    poisoned = layout.parse_dlq_key(layout.dlq_poisoned_key(export_id))
    reason = layout.parse_dlq_key(layout.dlq_poisoned_reason_key(export_id))
    assert poisoned == layout.DlqKey("poisoned", export_id, layout.DLQ_POISONED_DOCUMENT)
    assert reason == layout.DlqKey("poisoned", export_id, layout.DLQ_POISONED_REASON)
    assert poisoned.prefix == reason.prefix
    assert layout.dlq_poisoned_key(export_id).startswith(poisoned.prefix)
    if "." not in entity:  # the entity is the file name up to its suffix
        quarantined = layout.parse_dlq_key(layout.quarantine_key(export_id, entity))
        assert quarantined is not None
        assert (quarantined.kind, quarantined.export_id) == ("quarantined", export_id)
        assert quarantined.entity == entity
        assert layout.quarantine_key(export_id, entity).startswith(quarantined.prefix)
    for key in (failed + layout.DLQ_ERROR, layout.dlq_poisoned_key(export_id)):
        parsed = layout.parse_dlq_key(key)
        assert parsed is not None and key.startswith(parsed.prefix)


@given(STARTS.map(lambda t: t.replace(tzinfo=UTC)), EXPORT_IDS)
def test_export_logs_file_by_day(start: datetime, export_id: str) -> None:
    key = layout.export_log_key(start, export_id)
    assert layout.is_export_log_key(key)
    assert layout.key_folder(key) == layout.LOGS_PREFIX + layout.time_folder(start, "daily") + "/"
    assert layout.key_name(key) == export_id + ".json"


def test_keys_under_reserved_prefixes_are_not_data() -> None:
    keys = [
        layout.staging_prefix("exp_1"),
        layout.watermark_key("d", "t", "x/"),
        layout.token_key("t_20250916_1_00000000"),
        layout.lease_key("d", "t"),
        layout.dlq_poisoned_key("exp_1"),
        layout.export_log_key(datetime(2025, 9, 16), "exp_1"),
        layout.probe_key("abc"),
        layout.replication_state_key("d/t/2025/09/16/"),
    ]
    assert all(k.startswith(layout.RESERVED_PREFIXES) for k in keys)


# -- distinct exports, distinct keys ---------------------------------------------------------
Export = tuple[str, str, str]  # dataset, table, destination key


@given(
    st.tuples(TINY_DATASETS, TINY, TINY_DEST_KEYS), st.tuples(TINY_DATASETS, TINY, TINY_DEST_KEYS)
)
@example(("a", "b.a", ""), ("a_b", "a", ""))
def test_state_keys_of_distinct_exports_differ(a: Export, b: Export) -> None:
    for key in (layout.export_state_prefix, layout.watermark_key, layout.dedup_key):
        assert (key(*a) == key(*b)) == (a == b)
    for table_key in (
        layout.schema_key,
        layout.check_stats_key,
        layout.lease_key,
        layout.legacy_watermark_key,
        layout.legacy_dedup_key,
    ):
        assert (table_key(*a[:2]) == table_key(*b[:2])) == (a[:2] == b[:2])
    target = "s3://replica/"
    same = layout.replica_destination(target, *a[:2]) == layout.replica_destination(target, *b[:2])
    assert same == (a[:2] == b[:2])


@given(DATASETS, NAMES, st.lists(NAMES, max_size=3).map(lambda p: "".join(s + "/" for s in p)))
def test_one_exports_state_keys_are_all_distinct(dataset: str, table: str, dest: str) -> None:
    keys = [
        layout.watermark_key(dataset, table, dest),
        layout.dedup_key(dataset, table, dest),
        layout.schema_key(dataset, table),
        layout.check_stats_key(dataset, table),
        layout.legacy_watermark_key(dataset, table),
        layout.legacy_dedup_key(dataset, table),
        layout.lease_key(dataset, table),
    ]
    assert len(set(keys)) == len(keys)
    assert all(k.startswith(layout.STATE_PREFIX) for k in keys[:-1])


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_snapshot_sits_beside_the_time_folders(granularity: Granularity) -> None:
    """A glob over the increments (``{destination}yyyy/...``) never reads the snapshot."""
    folder = layout.time_folder(datetime(2025, 9, 16, 14), granularity)
    assert not layout.in_snapshot(folder)
    assert layout.snapshot_destination("gs://b/t/") == "gs://b/t__snapshot/"
    assert layout.is_snapshot_destination(layout.snapshot_destination("gs://b/t/"))
    assert layout.snapshot_destination("gs://b/t") == layout.snapshot_destination("gs://b/t/")
