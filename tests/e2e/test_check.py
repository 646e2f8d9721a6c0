"""Bad config exits 2, names the YAML path, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import dpexport

BASE = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
buckets: {exports: gs://b}
exports:
  - source: diagnosticpro_prod.parts_catalog
    destination: gs://b/prod/diagnosticpro_prod/parts_catalog/
    format: PARQUET
    compression: SNAPPY
    mode: FULL_REFRESH
"""

MODE = "mode: FULL_REFRESH"
SOURCE = "diagnosticpro_prod.parts_catalog"
SECRET = "encryption:\n  key_provider:\n    kind: local\n    api_key: hunter2hunter2\n"

CASES = {
    "unknown key": (
        BASE.replace("mode: FULL_REFRESH", "mode: FULL_REFRESH\n    formt: CSV"),
        "exports[0].formt",
        "format",
    ),
    "wrong type": (BASE.replace("format: PARQUET", "format: [PARQUET]"), "exports[0].format", None),
    "codec for format": (
        BASE.replace("format: PARQUET", "format: JSONL"),
        "exports[0].compression",
        None,
    ),
    "bad cron": (
        BASE.replace("mode: FULL_REFRESH", "mode: FULL_REFRESH\n    schedule: '61 * * * *'"),
        "exports[0].schedule",
        None,
    ),
    "escaping entity": (
        BASE.replace("diagnosticpro_prod.parts_catalog", "diagnosticpro_prod.../x"),
        "exports[0].source",
        None,
    ),
    "inline secret": (
        BASE + "encryption:\n  key_provider:\n    kind: local\n    api_key: hunter2hunter2\n",
        "api_key",
        None,
    ),
    "malformed yaml": (
        BASE.replace("format: PARQUET", "format: [PARQUET"),
        "malformed YAML",
        "bad.yaml:9:",
    ),
    "missing partition column": (
        BASE.replace(
            "mode: FULL_REFRESH",
            "mode: FULL_REFRESH\n    partitioning: {field: no_such_column, granularity: daily}",
        ),
        "no_such_column",
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_exits_2_and_writes_nothing(case: str, demo_dir: Path) -> None:
    text, path, hint = CASES[case]
    config = demo_dir / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    root = demo_dir / "out"
    for command in ("check", "run"):
        result = dpexport("-c", config, "--local-root", root, command)
        assert result.code == 2, (case, command, result.out, result.err)
        assert path in result.err, (case, result.err)
        if hint:
            assert hint in result.err
        assert "hunter2" not in result.err + result.out
        assert not root.exists() or not any(root.rglob("*")), case


def test_check_lists_every_error_in_one_pass(demo_dir: Path) -> None:
    text = BASE.replace("format: PARQUET", "format: PARKET").replace(
        "mode: FULL_REFRESH", "mode: SOMETIMES\n    schedule: 'every day'"
    )
    config = demo_dir / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    result = dpexport("-c", config, "check")
    assert result.code == 2
    for path in ("exports[0].format", "exports[0].mode", "exports[0].schedule"):
        assert path in result.err, result.err
    assert "PARQUET" in result.err  # the nearest valid choice


def test_demo_config_checks_clean(demo_dir: Path) -> None:
    result = dpexport("-c", demo_dir / "dpexport.yaml", "check")
    assert result.code == 0, result.err
    assert "OK (15 tables)" in result.out
