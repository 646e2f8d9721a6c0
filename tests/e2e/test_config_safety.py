"""Configs that would publish where they must not (issue 15): ``check`` and ``run`` exit 2,
name the YAML path and the offending value, and write nothing anywhere.

- a. no hard-coded bucket: a table that needs ``buckets.exports`` when it is missing;
- b. strict URIs: ``gs:/b`` (a local path today), empty or dot segments, control
  characters;
- c. a destination under a reserved prefix at the bucket root (``_staging/``...);
- d. two tables whose destinations are equal or nested;
- e. source columns named like dpexport's own (``_schema_version``, ``__dp_*``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli import dpexport, warehouse_sql

HEAD = """\
project: p
environment: prod
warehouse: {engine: duckdb, path: warehouse.duckdb}
"""
BUCKETS = "buckets: {exports: gs://b}\n"
DS = "diagnosticpro_prod"


def item(source: str, destination: str | None = None, extra: str = "") -> str:
    """One ``exports`` item (a FULL_REFRESH Parquet export unless ``extra`` says more)."""
    lines = [f"  - source: {DS}.{source}"]
    if destination is not None:
        lines.append(f"    destination: {destination}")
    lines += ["    format: PARQUET", "    compression: SNAPPY"]
    lines += [f"    {line}" for line in (extra or "mode: FULL_REFRESH").splitlines()]
    return "\n".join(lines) + "\n"


def exports(*items: str) -> str:
    return "exports:\n" + "".join(items)


APPEND = "mode: APPEND\npartitioning: {field: created_date, granularity: daily}"
RESERVED = (
    "_staging/",
    "_state/",
    "idempotency-tokens/",
    "idempotency-tokens/_leases/",
    "dead-letter-queue/",
    "export-logs/",
    ".dpexport-locks/",
)

#: case -> (config text, strings the error must hold: YAML path, offending value, ...)
CASES: dict[str, tuple[str, list[str]]] = {
    # a. no default bucket
    "a: item without destination, no buckets": (
        HEAD + exports(item("parts_catalog")),
        ["exports[0]:", "buckets.exports"],
    ),
    "a: section-only table, buckets without exports": (
        HEAD
        + "buckets: {cold_storage: gs://cold}\n"
        + f"full_refresh:\n  {DS}.dtc_code_definitions: {{frequency: daily}}\n",
        [f'full_refresh["{DS}.dtc_code_definitions"]', "buckets.exports"],
    ),
    # b. strict URIs
    "b: one slash": (
        HEAD + BUCKETS + exports(item("parts_catalog", "gs:/b/prod/x/")),
        ["exports[0].destination", "'gs:/b/prod/x/'", "gs://"],
    ),
    "b: no slash": (
        HEAD + BUCKETS + exports(item("parts_catalog", "s3:b/prod/x/")),
        ["exports[0].destination", "'s3:b/prod/x/'"],
    ),
    "b: one slash in the exports bucket": (
        HEAD + "buckets: {exports: 'gs:/b'}\n" + exports(item("parts_catalog")),
        ["buckets.exports", "'gs:/b'"],
    ),
    "b: empty segment": (
        HEAD + BUCKETS + exports(item("parts_catalog", "gs://b//prod/x/")),
        ["exports[0].destination", "'gs://b//prod/x/'", "empty"],
    ),
    "b: dot segment": (
        HEAD + BUCKETS + exports(item("parts_catalog", "gs://b/./prod/x/")),
        ["exports[0].destination", "'gs://b/./prod/x/'"],
    ),
    "b: newline": (
        HEAD + BUCKETS + exports(item("parts_catalog", '"gs://b/prod/x\\n/"')),
        ["exports[0].destination", "'gs://b/prod/x\\n/'", "control character"],
    ),
    "b: NUL": (
        HEAD + BUCKETS + exports(item("parts_catalog", '"gs://b/prod/x\\0y/"')),
        ["exports[0].destination", "'gs://b/prod/x\\x00y/'", "control character"],
    ),
    "b: escape in a local path": (
        HEAD + BUCKETS + exports(item("parts_catalog", '"local-out/x\\ey/"')),
        ["exports[0].destination", "'local-out/x\\x1by/'", "control character"],
    ),
    # c. reserved prefixes
    **{
        f"c: under {prefix}": (
            HEAD + BUCKETS + exports(item("parts_catalog", f"gs://b/{prefix}pub/")),
            ["exports[0].destination", f"'gs://b/{prefix}pub/'", prefix.split("/")[0]],
        )
        for prefix in RESERVED
    },
    "c: the reserved folder itself, no slash": (
        HEAD + BUCKETS + exports(item("parts_catalog", "gs://b/_staging")),
        ["exports[0].destination", "'gs://b/_staging'", "_staging/"],
    ),
    "c: bucket root shared with another table": (
        HEAD
        + BUCKETS
        + exports(item("parts_catalog", "gs://b/"), item("dtc_code_definitions", "gs://b/p/x/")),
        ["exports[1].destination", "parts_catalog", "dtc_code_definitions", "gs://b/p/x/"],
    ),
    # d. overlapping destinations
    "d: FULL_REFRESH folder holds an APPEND table's": (
        HEAD
        + BUCKETS
        + exports(
            item("reddit_diagnostic_posts", "gs://b/dev/ds/t/", APPEND),
            item("parts_catalog", "gs://b/dev/ds/"),
        ),
        [
            "exports[1].destination",
            "reddit_diagnostic_posts",
            "parts_catalog",
            "gs://b/dev/ds/t/",
            "'gs://b/dev/ds/'",
        ],
    ),
    "d: nested the other way, no trailing slash": (
        HEAD
        + BUCKETS
        + exports(
            item("parts_catalog", "gs://b/dev/ds"),
            item("reddit_diagnostic_posts", "gs://b/dev/ds/t", APPEND),
        ),
        ["exports[1].destination", "parts_catalog", "reddit_diagnostic_posts", "gs://b/dev/ds/"],
    ),
    "d: equal destinations": (
        HEAD
        + BUCKETS
        + exports(
            item("parts_catalog", "gs://b/same/"), item("dtc_code_definitions", "gs://b/same")
        ),
        ["exports[1].destination", "parts_catalog", "dtc_code_definitions", "gs://b/same/"],
    ),
    "d: a default destination inside an explicit one": (
        HEAD
        + BUCKETS
        + exports(item("parts_catalog", f"gs://b/prod/{DS}/"))
        + f"full_refresh:\n  {DS}.dtc_code_definitions: {{frequency: daily}}\n",
        [
            f'full_refresh["{DS}.dtc_code_definitions"]',
            "parts_catalog",
            f"gs://b/prod/{DS}/dtc_code_definitions/",
        ],
    ),
    "d: nested local folders": (
        HEAD
        + BUCKETS
        + exports(
            item("parts_catalog", "local-out/a/"), item("dtc_code_definitions", "local-out/a/b/")
        ),
        ["exports[1].destination", "parts_catalog", "'local-out/a/b/'"],
    ),
}


def _tree(base: Path) -> set[str]:
    """Every path under ``base`` (DuckDB's own WAL aside)."""
    return {p.relative_to(base).as_posix() for p in base.rglob("*") if ".wal" not in p.name}


def _refused(config_text: str, base: Path, expected: list[str]) -> None:
    config = base / "bad.yaml"
    config.write_text(config_text, encoding="utf-8")
    root = base / "out"
    before = _tree(base)
    for command in ("check", "run"):
        result = dpexport("-c", config, "--local-root", root, command, cwd=base)
        assert result.code == 2, (command, result.out, result.err)
        for text in expected:
            assert text in result.err, (command, text, result.err)
        assert _tree(base) == before, (command, _tree(base) - before)


@pytest.mark.parametrize("case", sorted(CASES))
def test_unsafe_config_exits_2_and_writes_nothing(case: str, demo_dir: Path) -> None:
    text, expected = CASES[case]
    _refused(text, demo_dir, expected)


def test_reserved_source_columns_are_refused(demo_dir: Path) -> None:
    warehouse_sql(demo_dir, f"ALTER TABLE {DS}.parts_catalog ADD COLUMN _schema_version VARCHAR")
    warehouse_sql(demo_dir, f"ALTER TABLE {DS}.dtc_code_definitions ADD COLUMN __dp_k0 VARCHAR")
    text = (
        HEAD
        + BUCKETS
        + exports(
            item("parts_catalog", "gs://b/p/parts/"),
            item("dtc_code_definitions", "gs://b/p/dtc/"),
        )
    )
    _refused(
        text,
        demo_dir,
        [
            "exports[0].source",
            f"{DS}.parts_catalog",
            "'_schema_version'",
            "exports[1].source",
            f"{DS}.dtc_code_definitions",
            "'__dp_k0'",
            "reserved",
        ],
    )


def test_safe_neighbours_stay_allowed(demo_dir: Path) -> None:
    """Siblings (one name a prefix of the other), a table's own sub-folders, and a bucket
    that only one table uses (its root included) are all fine."""
    text = (
        HEAD
        + "buckets: {exports: gs://b, solo: gs://solo}\n"
        + exports(
            item("parts_catalog", "gs://b/dev/ds/t/"),
            item("dtc_code_definitions", "gs://b/dev/ds/t_2/"),
            item("equipment_manufacturers", "gs://solo"),
            item("reddit_diagnostic_posts", "gs://b/dev/ds/_staging_not/", APPEND),
        )
    )
    config = demo_dir / "ok.yaml"
    config.write_text(text, encoding="utf-8")
    result = dpexport("-c", config, "check", cwd=demo_dir)
    assert result.code == 0, result.err
    assert "OK (4 tables)" in result.out
