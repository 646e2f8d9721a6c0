"""``run --parallel`` starts the largest tables first (the engine's size hint), and
returns the results in the config's order."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb

from dpexport.engines.duckdb import DuckDBEngine
from dpexport.flow.parallel import export_all, largest_first


class _Spec:
    def __init__(self, name: str) -> None:
        self.name = name


def test_unknown_sizes_start_first_then_the_largest() -> None:
    assert largest_first([10, None, 30, 20, None, 30]) == [1, 4, 2, 5, 3, 0]
    assert largest_first([]) == []


def test_tables_start_largest_first_and_results_keep_the_config_order() -> None:
    specs: list[Any] = [_Spec(n) for n in ("small", "view", "big", "mid")]
    started: list[str] = []
    lock = threading.Lock()

    def export(spec: Any) -> Any:
        with lock:
            started.append(spec.name)
        return spec.name.upper()

    results = export_all(specs, 1, export, sizes=[10, None, 30, 20])
    assert started == ["view", "big", "mid", "small"]
    assert results == ["SMALL", "VIEW", "BIG", "MID"]
    started.clear()
    assert export_all(specs, 1, export) == ["SMALL", "VIEW", "BIG", "MID"]
    assert started == ["small", "view", "big", "mid"]  # no sizes: the config's order


def test_duckdb_size_hint_is_rows_times_columns(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA ds")
        con.execute("CREATE TABLE ds.t AS SELECT i, i * 2 AS j, 'x' AS k FROM range(5000) r(i)")
        con.execute("CREATE VIEW ds.v AS SELECT * FROM ds.t")
    with DuckDBEngine(path) as engine:
        assert engine.size_hint("ds", "t") == 15_000
        assert engine.size_hint("DS", "T") == 15_000
        assert engine.size_hint("ds", "v") is None
        assert engine.size_hint("ds", "missing") is None


def _engine(per_core: int) -> Any:
    """Just the engine's exports per core."""
    return type("Engine", (), {"exports_per_core": per_core})()


def test_the_default_is_the_engines_exports_per_core_times_the_cores(monkeypatch: Any) -> None:
    from dpexport.flow import parallel

    for cores, duckdb_like, bigquery_like in ((1, 1, 4), (2, 2, 8), (3, 3, 12), (8, 8, 16)):
        monkeypatch.setattr(parallel, "cores", lambda n=cores: n)
        got = (parallel.default_parallel(_engine(1)), parallel.default_parallel(_engine(4)))
        assert got == (duckdb_like, bigquery_like), cores
    monkeypatch.setattr(parallel, "cores", lambda: 32)
    assert parallel.default_parallel(_engine(1)) == parallel.MAX_DEFAULT == 16
