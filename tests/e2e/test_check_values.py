"""Values of the right type that cannot work are refused by ``check`` (issue 17).

Each used to pass ``check`` and fail only in the run, or silently do something else.
Through the CLI: exit 2, the value's own YAML path, what was expected or the nearest
valid choice, and nothing written, for ``check`` and ``run`` alike.
"""

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
ITEM_END = "mode: FULL_REFRESH"


def item(extra: str) -> str:
    """BASE with ``extra`` (one or more ``key: value`` lines) added to its exports item."""
    lines = "".join(f"\n    {line}" for line in extra.splitlines())
    return BASE.replace(ITEM_END, ITEM_END + lines)


SECOND = """\
  - source: diagnosticpro_prod.parts_inventory
    destination: gs://b/prod/diagnosticpro_prod/parts_catalog
"""

#: case -> (config text, YAML path, text that must follow in the message)
CASES: dict[str, tuple[str, str, str]] = {
    "unknown check": (
        item("validation: [unique_post_idz]"),
        "exports[0].validation[0]",
        "did you mean 'unique_post_ids'?",
    ),
    "check parameter of the wrong type": (
        item("validation: [{content_length_check: {min: abc}}]"),
        "exports[0].validation[0].content_length_check.min",
        "expected an integer >= 0; did you mean '1'?",
    ),
    "empty file": ("", "<root>", "`dpexport init` writes a starter config"),
    "comment-only file": ("# nothing yet\n\n# still nothing\n", "<root>", "dpexport init"),
    "7-field cron": (
        item("schedule: '0 0 * * * * *'"),
        "exports[0].schedule",
        "did you mean '0 * * * *'?",
    ),
    "6-field Quartz cron": (
        item("schedule: '0 0 */6 * * *'"),
        "exports[0].schedule",
        "did you mean '0 */6 * * *'?",
    ),
    "cron step longer than its field": (
        item("schedule: '*/120 * * * *'"),
        "exports[0].schedule",
        "did you mean '0 */2 * * *'?",
    ),
    "cron that never fires": (
        item("schedule: '0 0 31 2 *'"),
        "exports[0].schedule",
        "did you mean '0 0 L 2 *'?",
    ),
    "max_attempts -1": (
        BASE + "retry_configuration: {max_attempts: -1}\n",
        "retry_configuration.max_attempts",
        "expected an integer >= 1 (1: no retry; the spec's 5); did you mean '1'?",
    ),
    "max_attempts 0": (
        BASE + "retry_configuration: {max_attempts: 0}\n",
        "retry_configuration.max_attempts",
        "did you mean '1'?",
    ),
    "lease renewed every 0 seconds": (
        BASE + "idempotency_design: {lease: {renew_every: 0 seconds}}\n",
        "idempotency_design.lease.renew_every",
        "expected a duration > 0; did you mean '30 seconds'?",
    ),
    "lease lapsing after 0 seconds": (
        BASE + "idempotency_design: {lease: {expires_after: 0 seconds}}\n",
        "idempotency_design.lease.expires_after",
        "did you mean '2 minutes'?",
    ),
    "lease lapsing before its renewal": (
        BASE + "idempotency_design: {lease: {renew_every: 2 minutes, expires_after: 30 seconds}}\n",
        "idempotency_design.lease.expires_after",
        "expected expires_after longer than renew_every",
    ),
    "lease lapsing as it is renewed": (
        BASE + "idempotency_design: {lease: {renew_every: 1 minute, expires_after: 60}}\n",
        "idempotency_design.lease.expires_after",
        "did you mean '4 minutes'?",
    ),
    "lease renewed after the default expiry": (
        BASE + "idempotency_design: {lease: {renew_every: 5 minutes}}\n",
        "idempotency_design.lease.renew_every",
        "did you mean '30 seconds'?",
    ),
    "failure rate over 100%": (
        BASE + "metrics: {failure_rate: {threshold: '500% over 1 hour', alert: Slack}}\n",
        "metrics.failure_rate.threshold",
        "did you mean '100% over 1 hour'?",
    ),
    "compression ratio over 100%": (
        BASE + "compression_matrix: {GZIP: {compression_ratio: 60-170%}}\n",
        "compression_matrix.GZIP.compression_ratio",
        "did you mean '60-100%'?",
    ),
    "deduplication whenever": (
        item("deduplication: whenever"),
        "exports[0].deduplication",
        "expected 'by COLUMN', 'by COLUMN, COLUMN'",
    ),
    "deduplication without by": (
        BASE + "append_only:\n  sessions: {change_column: ts, deduplication: session_id}\n",
        "append_only.sessions.deduplication",
        "did you mean 'by session_id'?",
    ),
    "bucket with a space": (
        BASE.replace("destination: gs://b/", "destination: gs://my bucket/"),
        "exports[0].destination",
        "did you mean 'gs://my-bucket/prod/diagnosticpro_prod/parts_catalog/'?",
    ),
    "S3 bucket with an underscore": (
        BASE.replace("{exports: gs://b}", "{exports: gs://b, cross_cloud: s3://dp_cross}"),
        "buckets.cross_cloud",
        "did you mean 's3://dp-cross'?",
    ),
    "GCS bucket in upper case": (
        BASE.replace("{exports: gs://b}", "{exports: gs://Exports}"),
        "buckets.exports",
        "did you mean 'gs://exports'?",
    ),
    "Azure container with a double dash": (
        BASE.replace("{exports: gs://b}", "{exports: gs://b, azure: az://dp--backup}"),
        "buckets.azure",
        "did you mean 'az://dp-backup'?",
    ),
    "two tables, one destination spelled two ways": (
        BASE + SECOND,
        "exports[1].destination",
        "did you mean 'gs://b/prod/diagnosticpro_prod/parts_inventory/'?",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_refuses_the_value_at_its_path(case: str, tmp_path: Path) -> None:
    text, path, hint = CASES[case]
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    root = tmp_path / "out"
    for command in ("check", "run"):
        result = dpexport("-c", config, "--local-root", root, command)
        assert result.code == 2, (case, command, result.out, result.err)
        assert f"{path}: " in result.err, (case, result.err)
        assert hint in result.err, (case, result.err)
        assert not root.exists() or not any(root.rglob("*")), case


def test_check_lists_every_refused_value_in_one_pass(tmp_path: Path) -> None:
    text = (
        item(
            "validation: [unique_post_idz, {content_length_check: {min: abc}}]\n"
            "schedule: '0 0 */6 * * *'\n"
            "deduplication: whenever"
        )
        + SECOND
        + "retry_configuration: {max_attempts: 0}\n"
        + "idempotency_design: {lease: {renew_every: 2 minutes, expires_after: 30 seconds}}\n"
        + "metrics: {failure_rate: {threshold: '500% over 1 hour'}}\n"
    ).replace("{exports: gs://b}", "{exports: gs://b, cross_cloud: 's3://my bucket'}")
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    root = tmp_path / "out"
    result = dpexport("-c", config, "--local-root", root, "check")
    assert result.code == 2, result.out + result.err
    paths = [
        "buckets.cross_cloud",
        "exports[0].validation[0]",
        "exports[0].validation[1].content_length_check.min",
        "exports[0].schedule",
        "exports[0].deduplication",
        "exports[1].destination",
        "retry_configuration.max_attempts",
        "idempotency_design.lease.expires_after",
        "metrics.failure_rate.threshold",
    ]
    for path in paths:
        assert f"{path}: " in result.err, (path, result.err)
    assert f"{len(paths)} problem(s)" in result.err, result.err
    assert not root.exists() or not any(root.rglob("*"))
