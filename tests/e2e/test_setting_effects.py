"""Settings that ``check`` accepted and only a refusal test covered change what dpexport
writes (issue 17): the Parquet format ``version``, ``encoding``, ``page_size`` and
``row_group_size`` (an item's own winning), on DuckDB's ``COPY`` path and dpexport's
writer; the CSV quote and escape; ``schema_evolution.backward_compatible``; the retry
``multiplier`` and ``max_delay_seconds``; the lease's ``renew_every`` and
``expires_after``; and a section 4 entry's ``export_mode``."""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

import dpexport
from dpexport.engines import open_engine
from dpexport.errors import TransientError
from dpexport.flow.context import RunOptions
from dpexport.flow.runner import export_policy, run_exports
from dpexport.reliability.retry import Retrier
from dpexport.storage.base import ObjectInfo, Store
from dpexport.timestamps import parse_rfc3339
from tests.e2e.cli import dpexport as cli
from tests.e2e.cli import plan_paths, warehouse_sql
from tests.parquet_pages import DATA_PAGES, pages

AT = "2025-09-16T14:30:22Z"
LATER = "2025-09-17T14:30:22Z"
COPY = "DuckDB COPY (DuckDB writes the Parquet files)"
PINNED = "streamed: the config sets Parquet row group/page"
HEAD = """\
project: p
environment: test
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
"""
ITEM = """\
exports:
  - source: ds.events
    destination: gs://b/events/
    format: FORMAT
    compression: SNAPPY
"""
#: ``kind`` repeats: a dictionary pays for it
EVENTS = """
CREATE OR REPLACE TABLE ds.events AS SELECT
    i AS id,
    'kind-' || (i % 10) AS kind,
    repeat('abc', 4) AS note,
    TIMESTAMP '2025-09-16 00:00:00' + to_microseconds(i) AS updated_at
FROM range({rows}) t(i)
"""


def _setup(base: Path, text: str, *, fmt: str = "PARQUET", rows: int = 2000) -> Path:
    """``ds.events`` of ``rows`` rows, and a config of HEAD, ``text`` (which holds
    ``{item}``, the exports item, where it goes) and that item's own lines after it."""
    con = duckdb.connect(str(base / "warehouse.duckdb"))
    con.execute("CREATE SCHEMA IF NOT EXISTS ds")
    con.execute(EVENTS.format(rows=rows))
    con.close()
    config = base / "dpexport.yaml"
    item = ITEM.replace("FORMAT", fmt).replace("SNAPPY", "SNAPPY" if fmt == "PARQUET" else "NONE")
    body = text.replace("{item}", item) if "{item}" in text else item + text
    config.write_text(HEAD + body, encoding="utf-8")
    return config


def _run(base: Path, at: str = AT) -> tuple[dict[str, Any], list[Path]]:
    """Run the export through the CLI: its manifest and data files."""
    config = base / "dpexport.yaml"
    result = cli("-c", config, "--local-root", base / "out", "run", "--at", at, "--json")
    assert result.code == 0, result.out + result.err
    [record] = json.loads(result.out)
    assert record["status"] == "SUCCESS", record
    [uri] = record["manifests"]
    manifest = base / "out" / "gs" / uri.removeprefix("gs://")
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    return doc, [manifest.parent / entry["name"] for entry in doc["files"]]


def _path(base: Path) -> str:
    return plan_paths(base / "dpexport.yaml", base / "plan-out", AT)["ds.events"]


def _column(path: Path, name: str) -> Any:
    meta = pq.ParquetFile(path).metadata
    return meta.row_group(0).column(meta.schema.names.index(name))


# -- Parquet: version and encoding, on both paths -------------------------------------

#: an item line that pins a Parquet size, so dpexport's own writer writes the file
STREAMED = "    optimization: {page_size: 1MB}\n"


@pytest.mark.parametrize("version", ["1.0", "2.6"])
@pytest.mark.parametrize("pin", ["", STREAMED])
def test_parquet_version_is_the_files_format_version(
    version: str, pin: str, tmp_path: Path
) -> None:
    formats = f'formats:\n  PARQUET:\n    format_config:\n      version: "{version}"\n'
    _setup(tmp_path, formats + "{item}" + pin)
    assert _path(tmp_path).startswith(PINNED) if pin else _path(tmp_path) == COPY
    _, [data] = _run(tmp_path)
    meta = pq.ParquetFile(data).metadata
    assert meta.format_version == version
    assert meta.created_by.startswith("DuckDB") != bool(pin)
    assert pq.read_table(data).num_rows == 2000


ENCODINGS = {
    # unset: DuckDB's COPY writes it, with dictionaries where they pay
    "": (COPY, True),
    "PLAIN": (PINNED, False),
    "PLAIN_DICTIONARY": (PINNED, True),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_parquet_encoding_is_dictionary_or_plain(encoding: str, tmp_path: Path) -> None:
    line = f"      encoding: {encoding}\n" if encoding else "      compression: SNAPPY\n"
    _setup(tmp_path, "formats:\n  PARQUET:\n    format_config:\n" + line + "{item}")
    path, dictionary = ENCODINGS[encoding]
    assert _path(tmp_path).startswith(path)
    _, [data] = _run(tmp_path)
    column = _column(data, "kind")
    assert column.has_dictionary_page == dictionary
    assert bool({"PLAIN_DICTIONARY", "RLE_DICTIONARY"} & set(column.encodings)) == dictionary
    if not dictionary:
        assert "PLAIN" in column.encodings


# -- Parquet: page and row group sizes ------------------------------------------------


def _data_pages(path: Path, name: str) -> list[int]:
    """The uncompressed size of each data page of column ``name`` (row group 0)."""
    return [size for kind, size in pages(path, _column(path, name)) if kind in DATA_PAGES]


#: both under pyarrow's cap of 20,000 rows (160 KB of ids) a page
@pytest.mark.parametrize("page_size", ["64KB", "128KB"])
def test_page_size_caps_the_data_pages(page_size: str, tmp_path: Path) -> None:
    formats = (
        "formats:\n  PARQUET:\n    format_config:\n      encoding: PLAIN\n"
        f"      page_size: {page_size}\n"
    )
    _setup(tmp_path, formats + "{item}", rows=200_000)  # 1.6 MB of BIGINT ids
    assert _path(tmp_path).startswith(PINNED)
    _, [data] = _run(tmp_path)
    pages = _data_pages(data, "id")
    limit = int(page_size.removesuffix("KB")) * 1024
    # a page is closed once it holds the size, checked after each write batch of 1,024
    # rows (8 KB of ids): every page but the last is from the size to a batch over it
    batch = 1024 * 8 + 64
    assert all(limit <= size <= limit + batch for size in pages[:-1]), pages
    assert pages[-1] <= limit + batch
    total = 200_000 * 8
    assert math.ceil(total / (limit + batch)) <= len(pages) <= math.ceil(total / limit), pages


def _groups(path: Path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


ROW_GROUPS = {
    # unpinned: DuckDB's COPY and its 122,880-row groups
    "unset": ("", "", COPY, None),
    "format": ("      row_group_size: 256KB\n", "", PINNED, 256 * 1024),
    "item wins": (
        "      row_group_size: 256KB\n",
        "    optimization: {row_group_size: 1MB}\n",
        PINNED,
        1024 * 1024,
    ),
}


@pytest.mark.parametrize("case", sorted(ROW_GROUPS))
def test_row_group_size_sizes_the_row_groups(case: str, tmp_path: Path) -> None:
    formats, item, path, size = ROW_GROUPS[case]
    text = "formats:\n  PARQUET:\n    format_config:\n      compression: SNAPPY\n" + formats
    _setup(tmp_path, text + "{item}" + item, rows=200_000)
    assert _path(tmp_path).startswith(path)
    _, [data] = _run(tmp_path)
    groups = _groups(data)
    assert sum(groups) == 200_000
    if size is None:
        assert len(groups) >= 2 and max(groups) <= 122_880, groups
        return
    # the groups are of Arrow bytes: as many as the table's bytes / the size, of as
    # many rows each (within a batch's rounding)
    arrow_bytes = pq.read_table(data).nbytes
    assert abs(len(groups) - math.ceil(arrow_bytes / size)) <= 1, (groups, arrow_bytes)
    assert max(groups[:-1]) - min(groups[:-1]) <= groups[0] // 50, groups


# -- CSV quote and escape -------------------------------------------------------------

#: (format block lines, the data line written for ``a,b`` / ``say "hi"`` / ``it's`` /
#: ``back\slash``)
CSV = {
    "defaults": ("", r'1,"a,b","say \"hi\"",it' "'" r's,"back\\slash"'),
    "quote '": (
        '    quote_character: "\'"\n',
        r"1,'a,b',say " '"hi"' r",'it\'s','back\\slash'",
    ),
    "quote ' doubled": (
        '    quote_character: "\'"\n    escape_character: "\'"\n',
        "1,'a,b',say \"hi\",'it''s',back\\slash",
    ),
    "escape is the quote": (
        "    escape_character: '\"'\n",
        '1,"a,b","say ""hi""",it\'s,back\\slash',
    ),
    "escape ~": ("    escape_character: '~'\n", '1,"a,b","say ~"hi~"",it\'s,back\\slash'),
}


@pytest.mark.parametrize("case", sorted(CSV))
def test_csv_quote_and_escape_are_the_bytes_of_a_quoted_field(case: str, tmp_path: Path) -> None:
    block, line = CSV[case]
    _setup(tmp_path, "formats:\n  CSV:\n" + block + "{item}" if block else "", fmt="CSV")
    warehouse_sql(
        tmp_path,
        "CREATE OR REPLACE TABLE ds.events AS SELECT * FROM (VALUES "
        "(1, 'a,b', 'say \"hi\"', 'it''s', 'back\\slash')) t(id, comma, quote, apostrophe, slash)",
    )
    _, [data] = _run(tmp_path)
    assert data.read_bytes() == b"id,comma,quote,apostrophe,slash\n" + line.encode() + b"\n"
    result = cli("--local-root", tmp_path / "out", "verify", "gs://b/events/")
    assert result.code == 0, result.out + result.err
    assert "1 file(s), 1 row(s), 0 problem(s)" in result.out, result.out


# -- schema evolution -----------------------------------------------------------------


@pytest.mark.parametrize("backward", [True, False])
def test_backward_compatible_decides_whether_a_dropped_column_fails(
    backward: bool, tmp_path: Path
) -> None:
    formats = (
        "formats:\n  PARQUET:\n    format_config:\n      schema_evolution:\n"
        f"        enabled: true\n        backward_compatible: {str(backward).lower()}\n"
    )
    _setup(tmp_path, formats + "{item}")
    _, [first] = _run(tmp_path)
    old = pq.read_table(first)  # a full refresh: the next export replaces it
    warehouse_sql(tmp_path, "ALTER TABLE ds.events DROP COLUMN note")
    schemas = tmp_path / "out/gs/b/_state/schemas/ds.events.json"
    if backward:
        config, out = tmp_path / "dpexport.yaml", tmp_path / "out"
        result = cli("-c", config, "--local-root", out, "run", "--at", LATER, "--json")
        assert result.code == 1, result.out + result.err
        [record] = json.loads(result.out)
        assert record["status"] == "FAILURE"
        assert "not backward compatible" in record["error"] and "note" in record["error"]
        assert "backward_compatible: false" in record["error"]
        assert len(json.loads(schemas.read_text())["versions"]) == 1
        return
    _, [second] = _run(tmp_path, LATER)
    history = json.loads(schemas.read_text())["versions"]
    assert len(history) == 2
    new = pq.read_table(second)
    assert "note" in old.column_names and "note" not in new.column_names
    versions = [set(t.column("_schema_version").to_pylist()) for t in (old, new)]
    assert versions == [{history[0]["version"]}, {history[1]["version"]}]


# -- retry waits ----------------------------------------------------------------------


class Hooked:
    """A store that calls ``hook(key, bytes)`` before each write (a file's: ``b""``)."""

    def __init__(self, inner: Store, hook: Callable[[str, bytes], None]) -> None:
        self.inner = inner
        self.url = inner.url
        self.hook = hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        self.hook(key, data)
        return self.inner.put_bytes(key, data)

    def put_file(self, key: str, source: Path) -> ObjectInfo:
        self.hook(key, b"")
        return self.inner.put_file(key, source)

    def put_if_absent(self, key: str, data: bytes) -> ObjectInfo:
        self.hook(key, data)
        return self.inner.put_if_absent(key, data)

    def replace_if_match(self, key: str, data: bytes, version: str | None) -> ObjectInfo:
        self.hook(key, data)
        return self.inner.replace_if_match(key, data, version)


def _run_in_python(base: Path, options: RunOptions) -> dict[str, Any]:
    """Run the export with ``options``; its export log."""
    config = dpexport.load_config(base / "dpexport.yaml")
    engine = open_engine(config.warehouse, base_dir=base)
    try:
        at = datetime(2025, 9, 16, 14, 30, 22, tzinfo=UTC)
        [result] = run_exports(config, engine, replace(options, at=at, local_root=base / "out"))
    finally:
        engine.close()
    assert result.status == "SUCCESS", result
    [log] = (base / "out" / "gs" / "b" / "export-logs").rglob("*.json")
    record: dict[str, Any] = json.loads(log.read_text())
    return record


#: retry_configuration -> the ceilings of the four waits (initial 10 s)
RETRIES: dict[str, tuple[str, list[float]]] = {
    "x3 up to 100 s": ("multiplier: 3, max_delay_seconds: 100", [10, 30, 90, 100]),
    "x2 up to 25 s": ("multiplier: 2, max_delay_seconds: 25", [10, 20, 25, 25]),
    "x1.5 up to 3600 s": ("multiplier: 1.5", [10, 15, 22.5, 33.75]),
}


@pytest.mark.parametrize("case", sorted(RETRIES))
def test_multiplier_and_max_delay_are_the_waits(case: str, tmp_path: Path) -> None:
    block, ceilings = RETRIES[case]
    text = f"retry_configuration: {{max_attempts: 5, initial_delay_seconds: 10, {block}}}\n"
    _setup(tmp_path, text + "{item}")
    config = dpexport.load_config(tmp_path / "dpexport.yaml")
    slept: list[float] = []

    def retrier() -> Retrier:
        # the config's policy; the sleep is recorded and the jitter draw fixed at half
        return Retrier(export_policy(config), sleep=slept.append, rng=lambda: 0.5)

    failures = [4]

    def unavailable(key: str, data: bytes) -> None:  # the first 4 writes fail as a 503 would
        if key.startswith("events/") and failures[0]:
            failures[0] -= 1
            raise TransientError("503 Service Unavailable", code="SERVICE_UNAVAILABLE")

    wrap = functools.partial(Hooked, hook=unavailable)
    record = _run_in_python(tmp_path, RunOptions(wrap_store=wrap, retrier=retrier))
    waits = [ceiling / 2 for ceiling in ceilings]
    assert slept == waits
    retried = [r for r in record["retries"] if r["code"] == "SERVICE_UNAVAILABLE"]
    assert [r["delay_seconds"] for r in retried] == waits
    assert record["retry_count"] == 4


# -- the lease ------------------------------------------------------------------------


@pytest.mark.parametrize(("renew", "expires"), [(0.3, 5), (0.7, 9)])
def test_lease_is_renewed_every_renew_every_and_lapses_after_expires_after(
    renew: float, expires: int, tmp_path: Path
) -> None:
    text = (
        f"idempotency_design:\n  lease: {{renew_every: {renew} seconds, "
        f"expires_after: {expires} seconds}}\n"
    )
    _setup(tmp_path, text + "{item}")
    docs: list[tuple[str, float, dict[str, Any]]] = []  # thread, time, lease document
    slow = [2.0]

    def watch(key: str, data: bytes) -> None:
        if "/_leases/" in "/" + key:
            docs.append((threading.current_thread().name, time.monotonic(), json.loads(data)))
        elif key.startswith("events/") and slow:  # the lease is renewed meanwhile
            time.sleep(slow.pop())

    _run_in_python(tmp_path, RunOptions(wrap_store=functools.partial(Hooked, hook=watch)))
    assert not slow  # the slow write happened
    for _, _, doc in docs:
        lapse = parse_rfc3339(doc["expires"]) - parse_rfc3339(doc["renewed"])
        assert lapse.total_seconds() == expires
    taken = docs[0][1]
    ticks = [at for thread, at, _ in docs if thread == "dpexport-lease"]
    gaps = [b - a for a, b in zip([taken, *ticks], ticks, strict=False)]
    assert len(ticks) >= int(2.0 / renew) - 1, gaps
    assert all(gap >= renew * 0.95 for gap in gaps), gaps


# -- a section 4 entry's export_mode --------------------------------------------------

#: section, the entry's settings, lines of the exports item -> the table's mode
CURSOR = ", change_column: updated_at"
MODES = {
    "append_only APPEND": ("append_only", "export_mode: APPEND" + CURSOR, ""),
    "append_only FULL_REFRESH": ("append_only", "export_mode: FULL_REFRESH", ""),
    "full_refresh OVERWRITE": ("full_refresh", "export_mode: OVERWRITE", ""),
    "full_refresh APPEND": ("full_refresh", "export_mode: APPEND", "    " + CURSOR[2:] + "\n"),
    "incremental INCREMENTAL": (
        "incremental",
        "export_mode: INCREMENTAL, merge_key: id" + CURSOR,
        "",
    ),
    "incremental APPEND": ("incremental", "export_mode: APPEND" + CURSOR, ""),
}


@pytest.mark.parametrize("case", sorted(MODES))
def test_a_section_entrys_export_mode_is_the_tables_mode(case: str, tmp_path: Path) -> None:
    section, entry, item = MODES[case]
    _setup(tmp_path, "{item}" + item + f"{section}:\n  events: {{{entry}}}\n")
    doc, _ = _run(tmp_path)
    mode = case.split()[1].replace("OVERWRITE", "FULL_REFRESH")
    assert doc["mode"] == mode
    assert doc["statistics"]["row_count"] == 2000
