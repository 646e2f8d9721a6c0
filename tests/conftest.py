"""Shared fixtures: a small demo warehouse built once per test session."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

DEMO_ROWS = 3000


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's dpexport settings."""
    for var in (
        "DPEXPORT_CONFIG",
        "DPEXPORT_LOCAL_ROOT",
        "DPEXPORT_HASH_KEY",
        "DPEXPORT_LOG_FORMAT",
    ):
        monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo warehouse file (read-only use: copy it before changing it)."""
    from dpexport.demo.warehouse import create_demo_warehouse

    path = tmp_path_factory.mktemp("warehouse") / "warehouse.duckdb"
    create_demo_warehouse(path, DEMO_ROWS)
    os.chmod(path, 0o444)
    return path


@pytest.fixture
def demo_dir(tmp_path: Path, demo_warehouse: Path) -> Path:
    """A folder with a writable copy of the demo warehouse and the demo config."""
    from dpexport.demo import example_config_text

    shutil.copyfile(demo_warehouse, tmp_path / "warehouse.duckdb")
    os.chmod(tmp_path / "warehouse.duckdb", 0o644)
    (tmp_path / "dpexport.yaml").write_text(example_config_text(), encoding="utf-8")
    return tmp_path
