"""``dpexport.config.value_checks``, ``config.cron`` and the clouds' bucket naming rules:
values of the right type that cannot work (issue 17), below the CLI
(tests/e2e/test_check_values.py runs them through it)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from dpexport.config.cron import misread
from dpexport.config.issues import Issues
from dpexport.config.loader import parse_yaml
from dpexport.config.validate import normalize
from dpexport.config.value_checks import check_values, human
from dpexport.errors import ConfigIssue
from dpexport.storage.uri import bucket_problem, uri_problem

ITEM = "exports:\n  - source: ds.t\n    destination: gs://b/t/\n"


def value_issues(text: str) -> list[ConfigIssue]:
    """What :func:`check_values` reports for ``text`` (on its own, as ``check`` runs it)."""
    doc = parse_yaml(text, "t.yaml")
    issues = Issues(doc)
    check_values(normalize(doc.data if doc.data is not None else {}, issues), issues)
    return issues.items


def one(text: str) -> ConfigIssue:
    found = value_issues(text)
    assert len(found) == 1, [i.render() for i in found]
    return found[0]


# -- what the spec and the examples write passes --------------------------------------


def test_the_example_configs_have_no_refused_value() -> None:
    from dpexport.demo import example_config_text

    repo = Path(__file__).resolve().parents[3]
    assert value_issues(example_config_text()) == []
    assert value_issues((repo / "examples" / "diagnosticpro.yaml").read_text("utf-8")) == []


@pytest.mark.parametrize(
    "dedup",
    [
        "by post_id",
        "by event_id on consumer side",
        "By part_id, location_id",
        "by part_id and location_id",
        "by a,b,c on consumer side",
    ],
)
def test_the_contract_deduplication_forms_pass(dedup: str) -> None:
    assert value_issues(ITEM + f"    deduplication: '{dedup}'\n") == []


# -- an empty file ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "# a comment\n", "---\n", "{}\n"])
def test_an_empty_file_is_refused_at_the_root(text: str) -> None:
    issue = one(text)
    assert issue.path == "" and "empty" in issue.message
    assert "dpexport init" in (issue.expected or "")


def test_a_file_with_keys_but_no_table_is_not_called_empty() -> None:
    assert value_issues("project: p\n") == []


# -- named checks -----------------------------------------------------------------------


def test_check_names_and_parameters_are_reported_at_their_path() -> None:
    text = ITEM + (
        "    validation:\n"
        "      - unique_post_idz\n"
        "      - {content_length_check: {min: abc, maxx: 3}}\n"
        "      - {content_length_check: {min: 10, max: 5}}\n"
    )
    found = {i.path: i for i in value_issues(text)}
    assert set(found) == {
        "exports[0].validation[0]",
        "exports[0].validation[1].content_length_check.min",
        "exports[0].validation[1].content_length_check.maxx",
        "exports[0].validation[2].content_length_check.min",
    }
    assert found["exports[0].validation[0]"].suggestion == "unique_post_ids"
    assert found["exports[0].validation[0]"].line == 5
    assert found["exports[0].validation[1].content_length_check.min"].suggestion == "1"
    assert found["exports[0].validation[1].content_length_check.maxx"].suggestion == "max"
    assert found["exports[0].validation[2].content_length_check.min"].expected == "min <= max"


def test_a_wrapped_item_keeps_its_wrapper_in_the_path() -> None:
    text = "exports:\n  - export_config:\n      source: ds.t\n      validation: [nope_check]\n"
    assert one(text).path == "exports[0].export_config.validation[0]"


def test_items_of_the_wrong_shape_are_left_to_the_model() -> None:
    # validate/the model report these; reporting them twice would be noise
    text = ITEM + "    validation: [42, {a: 1, b: 2}, {transcript_availability: half}]\n"
    assert value_issues(text) == []


# -- schedules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "words", "suggestion"),
    [
        ("0 0 * * * * *", "7 cron fields", "0 * * * *"),
        ("0 0 */6 * * *", "6 cron fields", "0 */6 * * *"),
        ("0 15 2 * * 2-6", "6 cron fields", "15 2 * * 1-5"),  # Quartz: 1 is Sunday
        ("* * * * * *", "6 cron fields", "* * * * *"),
        ("*/90 * * * *", "step /90 in the minute field", None),
        ("*/120 * * * *", "step /120 in the minute field", "0 */2 * * *"),
        ("0 */48 * * *", "step /48 in the hour field", "0 0 */2 * *"),
        ("0 0 1 */12 *", "step /12 in the month field", None),
        ("0 0 31 2 *", "never fires", "0 0 L 2 *"),
        ("0 0 31 4 *", "never fires", "0 0 L 4 *"),
        ("CRON_TZ=Europe/Paris 0 0 * * * *", "6 cron fields", "0 * * * *"),
    ],
)
def test_crons_croniter_would_misread(cron: str, words: str, suggestion: str | None) -> None:
    problem = misread(cron)
    assert problem is not None and words in problem.message
    assert problem.suggestion == suggestion


@pytest.mark.parametrize(
    "cron",
    [
        "0 */6 * * *",
        "0 2 * * *",
        "0 0 29 2 *",
        "*/15 * * * *",
        "0 0 * * MON-FRI",
        "@hourly",
        "61 * * * *",  # croniter refuses it: validate reports "not a valid cron expression"
        "continuous",
        "daily",
    ],
)
def test_crons_read_as_written_pass(cron: str) -> None:
    assert misread(cron) is None


def test_every_schedule_key_is_checked() -> None:
    text = ITEM + (
        "    schedule: '0 0 * * * *'\n"
        "full_refresh:\n  ds.u: {frequency: '0 0 31 2 *'}\n"
        "replication:\n  - {tables: [ds.t], target: 's3://x/', schedule: '*/90 * * * *'}\n"
    )
    assert [i.path for i in value_issues(text)] == [
        "exports[0].schedule",
        'full_refresh["ds.u"].frequency',
        "replication[0].schedule",
    ]


# -- retry policy and lease -------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "path", "suggestion"),
    [
        ("{max_attempts: -1}", "max_attempts", "1"),
        ("{max_attempts: 0}", "max_attempts", "1"),
        ("{initial_delay_seconds: -5}", "initial_delay_seconds", "0"),
        ("{initial_delay_seconds: 60, max_delay_seconds: 10}", "max_delay_seconds", "60"),
        ("{max_delay_seconds: 10}", "max_delay_seconds", "30"),
        ("{multiplier: 0.5}", "multiplier", "2"),
        ("{deadline_seconds: 0}", "deadline_seconds", "7200"),
    ],
)
def test_a_retry_policy_that_cannot_work(block: str, path: str, suggestion: str) -> None:
    issue = one(f"retry_configuration: {block}\n")
    assert issue.path == f"retry_configuration.{path}"
    assert issue.suggestion == suggestion


def test_a_linear_backoff_may_keep_any_multiplier() -> None:
    text = "retry_configuration: {backoff_strategy: linear, multiplier: 0.5, max_attempts: 1}\n"
    assert value_issues(text) == []


@pytest.mark.parametrize(
    ("lease", "path", "suggestion"),
    [
        ("{renew_every: 0 seconds}", "renew_every", "30 seconds"),
        ("{expires_after: 0}", "expires_after", "2 minutes"),
        ("{renew_every: 2 minutes, expires_after: 30 seconds}", "expires_after", "8 minutes"),
        ("{renew_every: 1 minute, expires_after: 1 minute}", "expires_after", "4 minutes"),
        ("{renew_every: 10 minutes}", "renew_every", "30 seconds"),
        ("{expires_after: 20 seconds}", "expires_after", "2 minutes"),
    ],
)
def test_a_lease_that_lapses_before_its_renewal(lease: str, path: str, suggestion: str) -> None:
    issue = one(f"idempotency_design: {{lease: {lease}}}\n")
    assert issue.path == f"idempotency_design.lease.{path}"
    assert issue.suggestion == suggestion


def test_both_zero_lease_times_are_reported() -> None:
    found = value_issues("idempotency_design: {lease: {renew_every: 0, expires_after: 0}}\n")
    assert [i.path.rsplit(".", 1)[-1] for i in found] == ["renew_every", "expires_after"]


def test_a_lease_that_is_not_a_duration_is_left_to_the_model() -> None:
    assert value_issues("idempotency_design: {lease: {renew_every: soon}}\n") == []


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=30), "30 seconds"),
        (timedelta(minutes=2), "2 minutes"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(seconds=90), "90 seconds"),
        (timedelta(seconds=7.5), "7.5 seconds"),
        (timedelta(days=2), "2 days"),
    ],
)
def test_human_durations(delta: timedelta, text: str) -> None:
    assert human(delta) == text


# -- shares and deduplication -----------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "words", "suggestion"),
    [
        ("500% over 1 hour", "cannot pass 100%", "100% over 1 hour"),
        ("100.5 % over 2 days", "cannot pass 100%", "100% over 2 days"),
        ("5% over 0 minutes", "window of 0", "5% over 1 hour"),
    ],
)
def test_a_failure_rate_is_a_share(threshold: str, words: str, suggestion: str) -> None:
    issue = one(f"metrics: {{failure_rate: {{threshold: '{threshold}'}}}}\n")
    assert issue.path == "metrics.failure_rate.threshold" and words in issue.message
    assert issue.suggestion == suggestion


def test_a_full_failure_rate_passes() -> None:
    assert value_issues("metrics: {failure_rate: {threshold: '100% over 1 hour'}}\n") == []


def test_a_compression_ratio_is_a_share() -> None:
    issue = one("compression_matrix: {ZSTD: {compression_ratio: 70-180%}}\n")
    assert issue.path == "compression_matrix.ZSTD.compression_ratio"
    assert issue.suggestion == "70-100%"


@pytest.mark.parametrize(
    ("where", "dedup", "suggestion"),
    [
        ("exports[0]", "whenever", None),
        ("exports[0]", "post_id", "by post_id"),
        ("exports[0]", "by", None),
        ("exports[0]", "by post id", None),
        ("exports[0]", "on consumer side", None),
    ],
)
def test_a_deduplication_the_exporter_cannot_read(
    where: str, dedup: str, suggestion: str | None
) -> None:
    issue = one(ITEM + f"    deduplication: '{dedup}'\n")
    assert issue.path == f"{where}.deduplication"
    assert issue.suggestion == suggestion
    assert "'by COLUMN'" in (issue.expected or "")


def test_a_deduplication_hint_uses_the_merge_key() -> None:
    text = "incremental:\n  ds.t: {change_column: ts, merge_key: [a, b], deduplication: always}\n"
    issue = one(text)
    assert issue.path == 'incremental["ds.t"].deduplication'
    assert issue.suggestion == "by a, b"


# -- bucket and container names ---------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "name"),
    [
        ("gs", "diagnosticpro-exports"),
        ("gs", "my_bucket.example.com"),
        ("gs", "b"),  # the 3-character minimum is not enforced (module comment)
        ("s3", "diagnosticpro-cross-cloud"),
        ("s3", "my-bucket.eu"),
        ("az", "diagnosticpro"),
        ("az", "$web"),
        ("gs", "a" * 63),
        ("gs", ("a" * 63 + ".") * 3 + "a" * 30),
    ],
)
def test_names_each_cloud_takes(scheme: str, name: str) -> None:
    assert bucket_problem(scheme, name) is None


@pytest.mark.parametrize(
    ("scheme", "name", "words", "tidy"),
    [
        ("gs", "my bucket", "' '", "my-bucket"),
        ("gs", "Exports", "upper case", "exports"),
        ("s3", "my_bucket", "'_'", "my-bucket"),
        ("az", "my.container", "'.'", "my-container"),
        ("az", "dp--backup", "'--'", "dp-backup"),
        ("s3", "a..b", "'..'", "a.b"),
        ("gs", "-edge-", "start and end", "edge"),
        ("gs", "a" * 64, "more than 63", None),
        ("gs", "192.168.1.10", "IP address", None),
        ("gs", "goog-exports", "goog", None),
        ("gs", "my-g00gle-data", "google", None),
        ("s3", "xn--exports", "reserves", "xn-exports"),
        ("s3", "exports-s3alias", "reserves", None),
    ],
)
def test_names_a_cloud_refuses(scheme: str, name: str, words: str, tidy: str | None) -> None:
    problem = bucket_problem(scheme, name)
    assert problem is not None and words in problem
    found = uri_problem(f"{scheme}://{name}/x/")
    assert found is not None
    assert found.suggestion == (f"{scheme}://{tidy}/x/" if tidy else None)
