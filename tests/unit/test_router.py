"""The router: files per folder, rolling at the size limit, closing on worker threads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dpexport.config.spec import CsvOptions, JsonlOptions, ParquetOptions
from dpexport.errors import InvalidArgument
from dpexport.formats import open_writer
from dpexport.formats.base import FormatWriter, WrittenFile
from dpexport.formats.router import MAX_OPEN, Folder, Router, split_by_keys

SCHEMA = pa.schema([("id", pa.int64()), ("kind", pa.string())])


def batch(start: int, rows: int) -> pa.RecordBatch:
    return pa.record_batch(
        [
            pa.array(range(start, start + rows), pa.int64()),
            pa.array([f"k{i}" for i in range(rows)]),
        ],
        schema=SCHEMA,
    )


class Opener:
    """Opens real writers under a folder, numbering files like staging does."""

    def __init__(self, root: Path, fmt: str = "PARQUET", options: ParquetOptions | None = None):
        self.root, self.fmt, self.options = root, fmt, options or ParquetOptions()
        self.opened: list[Folder] = []

    def __call__(self, folder: Folder) -> FormatWriter:
        self.opened.append(folder)
        path = self.root / f"part-{len(self.opened):05d}.{self.fmt.lower()}"
        return open_writer(
            path,
            SCHEMA,
            self.fmt,
            "ZSTD",
            parquet=self.options,
            jsonl=JsonlOptions(),
            csv=CsvOptions(),
        )


def check_files(closed: list[tuple[Folder, WrittenFile]]) -> None:
    for _, wf in closed:
        data = wf.path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == wf.sha256
        assert len(data) == wf.stored_bytes


def route(root: Path, fmt: str) -> list[tuple[Folder, WrittenFile]]:
    """40 folders written round-robin, 3 rounds: with MAX_OPEN writers open, every
    folder is retired (oldest first) before its next batch, so it gets a file per round."""
    router = Router(Opener(root, fmt), max_file_size=1 << 30)
    for n in range(120):
        router.write(Folder("2025/09/16", str(n % 40)), batch(n * 10, 10))
    return router.close()


def test_files_listed_in_the_order_writers_were_retired(tmp_path: Path) -> None:
    """Parquet writers close on worker threads, JSONL ones on the caller: both list their
    files in the order the writers were retired, whatever finished first."""
    (tmp_path / "p").mkdir()
    (tmp_path / "j").mkdir()
    parquet, jsonl = route(tmp_path / "p", "PARQUET"), route(tmp_path / "j", "JSONL")
    assert [(f, wf.rows) for f, wf in parquet] == [(f, wf.rows) for f, wf in jsonl]
    assert len(parquet) == 120
    check_files(parquet)
    ids = [pq.read_table(wf.path).column("id").to_pylist() for _, wf in parquet]
    assert ids == [list(range(n * 10, n * 10 + 10)) for n in range(120)]


def test_closed_lists_finished_files_while_routing(tmp_path: Path) -> None:
    router = Router(Opener(tmp_path), max_file_size=1 << 30)
    for n in range(MAX_OPEN + 20):
        router.write(Folder("t", str(n)), batch(n, 3))
    router.close()
    assert [f.sub for f, _ in router.closed] == [str(n) for n in range(MAX_OPEN + 20)]


def test_rolls_at_the_size_limit(tmp_path: Path) -> None:
    """With a limit below one batch every batch is a file of its own; stored_bytes of the
    written files is what decides, not the cheap bound."""
    router = Router(Opener(tmp_path), max_file_size=1)
    folder = Folder("t", "a")
    for n in range(5):
        router.write(folder, batch(n * 100, 100))
    closed = router.close()
    assert [wf.rows for _, wf in closed] == [100] * 5
    check_files(closed)


def test_a_big_limit_keeps_one_file(tmp_path: Path) -> None:
    router = Router(Opener(tmp_path), max_file_size=10 * 1024 * 1024)
    for n in range(50):
        router.write(Folder("t"), batch(n * 100, 100))
    closed = router.close()
    assert [wf.rows for _, wf in closed] == [5000]


def test_ensure_makes_an_empty_file_only_for_untouched_folders(tmp_path: Path) -> None:
    opener = Opener(tmp_path)
    router = Router(opener, max_file_size=1 << 30)
    router.write(Folder("t", "a"), batch(0, 5))
    for n in range(MAX_OPEN):  # retire "a"
        router.write(Folder("t", f"x{n}"), batch(0, 1))
    router.ensure(Folder("t", "a"))
    router.ensure(Folder("t", "empty"))
    closed = router.close()
    assert [wf.rows for f, wf in closed if f.sub in ("a", "empty")] == [5, 0]


def test_a_failing_close_surfaces_and_abort_leaves_no_file(tmp_path: Path) -> None:
    """A string column cannot be DELTA_BINARY_PACKED: Arrow fails while encoding, which
    happens on a worker thread; the error reaches the caller, and abort waits for every
    close before the caller discards staging."""
    bad = ParquetOptions(column_encoding={"kind": "DELTA_BINARY_PACKED"})
    router = Router(Opener(tmp_path, options=bad), max_file_size=1 << 30)
    with pytest.raises(InvalidArgument):
        for n in range(MAX_OPEN + 5):
            router.write(Folder("t", str(n)), batch(n, 2))
        router.close()
    router.abort()
    assert not list(tmp_path.glob("*.parquet"))


def test_split_by_keys_runs() -> None:
    data = pa.record_batch(
        [
            pa.array([1, 2, 3, 4, 5], pa.int64()),
            pa.array(["a", "b", "c", "d", "e"]),
            pa.array(["2025/09/16", "2025/09/16", "2025/09/16", None, None]),
            pa.array(["x", "x", "y", "y", "y"]),
        ],
        names=["id", "kind", "__dp_k0", "__dp_k1"],
    )
    runs = split_by_keys(data)
    assert [(v, b.num_rows) for v, b in runs] == [
        ({"__dp_k0": "2025/09/16", "__dp_k1": "x"}, 2),
        ({"__dp_k0": "2025/09/16", "__dp_k1": "y"}, 1),
        ({"__dp_k0": None, "__dp_k1": "y"}, 2),
    ]
    assert all(b.schema.names == ["id", "kind"] for _, b in runs)


def test_split_by_keys_keeps_null_apart_from_nul_and_values_apart_across_keys() -> None:
    """NULL and '\\x00' next to each other are two runs; so are ('a\\x1fb', 'c') and
    ('a', 'b\\x1fc'), which one joined text key would have made equal."""
    data = pa.record_batch(
        [
            pa.array(range(6), pa.int64()),
            pa.array(["2025/09/16"] * 6),
            pa.array(["\x00", None, None, "", "a\x1fb", "a"]),
            pa.array(["k", "k", "k", "k", "c", "b\x1fc"]),
        ],
        names=["id", "__dp_k0", "__dp_k1", "__dp_k2"],
    )
    runs = split_by_keys(data)
    assert [(v["__dp_k1"], v["__dp_k2"], b["id"].to_pylist()) for v, b in runs] == [
        ("\x00", "k", [0]),
        (None, "k", [1, 2]),
        ("", "k", [3]),
        ("a\x1fb", "c", [4]),
        ("a", "b\x1fc", [5]),
    ]
