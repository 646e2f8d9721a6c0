"""DuckDB's ``PARTITION_BY`` folders (engines.duckdb_copy): the hex-encoded key of
each folder decodes to exactly the value its rows hold, so the folder the file is then
moved to is ``layout.safe_segment``'s, as on the streamed path."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from dpexport.engines.duckdb_copy import _decoded, _encoded
from dpexport.storage import layout

VALUES = [None, "", "\x00", "_null_", "_empty_", "%00", "%5Fnull_", ".", "..", "a/b", "ünï", "x"]


def test_partition_folders_decode_to_their_values(tmp_path: Path) -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT i, v[i + 1] AS kind FROM range(?) r(i), (SELECT ? AS v)",
        [len(VALUES), VALUES],
    )
    con.execute(
        f"COPY (SELECT i, kind, {_encoded('kind')} AS __dp_p1 FROM t) TO '{tmp_path / 'out'}' "
        "(FORMAT parquet, PARTITION_BY (__dp_p1))"
    )
    segments: dict[str, object] = {}
    for path in (tmp_path / "out").rglob("*.parquet"):
        [folder] = path.parent.relative_to(tmp_path / "out").parts
        key, value = _decoded(folder, lambda key: {})
        assert key == "__dp_k1"
        assert pq.read_table(path, columns=["kind"])["kind"].to_pylist() == [value]
        segments[layout.safe_segment(value)] = value
    assert sorted(segments.values(), key=repr) == sorted(VALUES, key=repr)
