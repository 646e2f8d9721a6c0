"""The embedded demo: a DuckDB warehouse with the spec's tables and the spec-built config."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: ``init --example NAME``: the configs shipped besides the starter
EXAMPLES = ("diagnosticpro",)


def example_config_text(name: str = "diagnosticpro") -> str:
    """A shipped example config: ``diagnosticpro`` is the spec-built one (every spec block
    in its place)."""
    return resources.files("dpexport.demo").joinpath(f"{name}.yaml").read_text("utf-8")


def starter_config_text() -> str:
    """``init``'s short commented starter: one DuckDB warehouse, one local bucket, one
    table of the demo warehouse."""
    return resources.files("dpexport.demo").joinpath("starter.yaml").read_text("utf-8")


def prepare_demo(directory: Path, rows: int) -> tuple[Path, Path]:
    """Create ``directory/warehouse.duckdb`` (rebuilt each time, deterministic) and
    ``directory/dpexport.yaml``; return the config path and the local root for buckets."""
    from dpexport.demo.warehouse import create_demo_warehouse

    directory.mkdir(parents=True, exist_ok=True)
    warehouse = directory / "warehouse.duckdb"
    tmp = directory / "warehouse.building.duckdb"
    tmp.unlink(missing_ok=True)
    create_demo_warehouse(tmp, rows)
    tmp.replace(warehouse)
    config = directory / "dpexport.yaml"
    config.write_text(example_config_text(), encoding="utf-8")
    return config, directory / "buckets"
