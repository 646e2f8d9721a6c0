"""Warehouse engines behind one interface; each imported only when used."""

from __future__ import annotations

from pathlib import Path

from dpexport.config.spec import WarehouseSpec
from dpexport.engines.base import Engine, ScanRequest, Slice
from dpexport.errors import UsageError

__all__ = ["Engine", "ScanRequest", "Slice", "open_engine"]


def open_engine(spec: WarehouseSpec, *, base_dir: Path | None = None) -> Engine:
    """The engine the config names; relative DuckDB paths resolve against ``base_dir``."""
    if spec.engine == "duckdb":
        from dpexport.engines.duckdb import DuckDBEngine

        path = Path(spec.path or "warehouse.duckdb")
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.exists():
            raise UsageError(f"warehouse.path: DuckDB file {str(path)!r} does not exist")
        return DuckDBEngine(path, memory_limit=spec.memory_limit, threads=spec.threads)
    raise UsageError(
        f"warehouse.engine: {spec.engine!r} is not available in this build yet; use 'duckdb'"
    )
