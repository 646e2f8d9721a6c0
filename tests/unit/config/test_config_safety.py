"""Issue 15's config rules, below the CLI (tests/e2e/test_config_safety.py runs them
through it): no default bucket, strict URIs, reserved prefixes, overlapping
destinations, reserved source column names."""

from __future__ import annotations

import pytest

from dpexport.config import check_against_schemas, load_config_text
from dpexport.errors import InvalidArgument
from dpexport.storage.uri import Location, parse_uri, uri_problem
from tests.unit.config.config_helpers import by_path, issues_of

BUCKETS = "buckets: {exports: gs://b}\n"


# -- a. no default bucket -----------------------------------------------------------


def test_tables_with_their_own_destinations_need_no_exports_bucket() -> None:
    cfg = load_config_text("exports:\n  - {source: ds.t, destination: s3://x/t/}\n")
    assert cfg.buckets == {}
    assert cfg.table("t").destination == "s3://x/t/"


def test_a_table_without_destination_names_the_missing_bucket_key() -> None:
    text = (
        "buckets: {cold_storage: gs://cold}\n"
        "exports:\n  - {source: ds.t, destination: gs://x/t/}\n  - {source: ds.u}\n"
        "incremental:\n  ds.v: {change_column: ts}\n"
    )
    issues = by_path(issues_of(text))
    assert set(issues) == {"exports[1]", 'incremental["ds.v"]'}
    for issue in issues.values():
        assert "buckets.exports" in issue.message
        assert "no default bucket" in issue.message
    assert issues["exports[1]"].line == 4


# -- b. strict URIs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs://b", Location("gs", "b", "")),
        ("gs://b/", Location("gs", "b", "")),
        ("s3://my-bucket.eu/a/b/", Location("s3", "my-bucket.eu", "a/b/")),
        ("az://container/x", Location("az", "container", "x")),
        (
            "https://acct.blob.core.windows.net/container/x",
            Location("az", "container", "x", account="acct"),
        ),
        ("out/x/", Location("file", "out/x", "")),
        ("../out", Location("file", "../out", "")),  # verify takes relative paths
        ("/abs/path:with-colon/", Location("file", "/abs/path:with-colon", "")),
        ("file:///tmp/x/", Location("file", "/tmp/x", "")),
    ],
)
def test_parse_uri_takes_well_formed_locations(uri: str, expected: Location) -> None:
    assert uri_problem(uri) is None
    assert parse_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "words", "suggestion"),
    [
        ("gs:/b/x/", "not followed by '//'", "gs://b/x/"),
        ("gs:b/x/", "not followed by '//'", "gs://b/x/"),
        ("s3:/b", "not followed by '//'", "s3://b"),
        ("C:\\exports", "not followed by '//'", None),
        ("GS://b/x/", "lower-case", "gs://b/x/"),
        ("gcs://b/x/", "unsupported storage scheme", "gs://b/x/"),
        ("https://example.com/c/x/", "not a storage location", None),
        (
            "http://acct.blob.core.windows.net/c/x/",
            "not Azure Blob's scheme",
            "https://acct.blob.core.windows.net/c/x/",
        ),
        (
            "https://acct.blob.core.windows.net/c//x/",
            "empty path segment",
            "https://acct.blob.core.windows.net/c/x/",
        ),
        ("gs:///x/", "names no bucket", None),
        ("gs://my bucket/x/", "not a valid GCS bucket name", "gs://my-bucket/x/"),
        ("gs://b//x/", "empty path segment", "gs://b/x/"),
        ("gs://b/x//", "empty path segment", "gs://b/x/"),
        ("gs://b/./x/", "'.' path segment", "gs://b/x/"),
        ("gs://b/x/../y/", "'..' path segment", None),
        ("gs://b/x\\..\\y/", "'..' path segment", None),
        ("gs://b/x\n/", "control character", None),
        ("gs://b/x\r/", "control character", None),
        ("gs://b/x\x00/", "control character", None),
        ("gs://b/x\u2028/", "control character", None),
        ("out/\x1b[31m/", "control character", None),
        ("file://", "names no path", None),
    ],
)
def test_parse_uri_refuses_what_is_almost_a_uri(
    uri: str, words: str, suggestion: str | None
) -> None:
    problem = uri_problem(uri)
    assert problem is not None and words in problem.message
    assert problem.suggestion == suggestion
    with pytest.raises(InvalidArgument, match="expected"):
        parse_uri(uri)


@pytest.mark.parametrize(
    ("where", "value", "suggestion"),
    [
        ("buckets: {exports: 'gs:/b'}\n", "'gs:/b'", "gs://b"),
        ("buckets: {exports: gs://b, cold: 'gs://c//x'}\n", "'gs://c//x'", "gs://c/x"),
        (
            "dlq_configuration: {storage_location: 'gss://b/dlq/'}\n",
            "'gss://b/dlq/'",
            "gs://b/dlq/",
        ),
        ('buckets: {exports: "gs://b/\\ta"}\n', "'gs://b/\\ta'", None),
    ],
)
def test_check_reports_bad_uris_at_their_path(where: str, value: str, suggestion: str) -> None:
    issues = issues_of(where)
    assert [i.value for i in issues] == [value]
    assert issues[0].suggestion == suggestion


def test_a_local_destination_keeps_refusing_dot_dot() -> None:
    text = BUCKETS + "exports:\n  - {source: ds.t, destination: 'out/../../etc/'}\n"
    issue = by_path(issues_of(text))["exports[0].destination"]
    assert "'..'" in issue.message


# -- c. reserved prefixes -------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        "_staging/",
        "_state/",
        "idempotency-tokens/",
        "dead-letter-queue/",
        "export-logs/",
        ".dpexport-locks/",
    ],
)
def test_a_destination_under_a_reserved_prefix_is_refused(prefix: str) -> None:
    text = BUCKETS + f"exports:\n  - {{source: ds.t, destination: 'az://c/{prefix}x'}}\n"
    issue = by_path(issues_of(text))["exports[0].destination"]
    assert repr(prefix) in issue.message
    assert issue.value == repr(f"az://c/{prefix}x")


def test_reserved_prefixes_only_count_at_the_bucket_root() -> None:
    text = BUCKETS + "exports:\n  - {source: ds.t, destination: 'gs://b/p/_staging/'}\n"
    assert load_config_text(text).table("t").destination == "gs://b/p/_staging/"


def test_a_default_destination_under_a_reserved_prefix_is_refused() -> None:
    text = "environment: _state\n" + BUCKETS + "full_refresh:\n  ds.t: {frequency: daily}\n"
    issue = by_path(issues_of(text))['full_refresh["ds.t"]']
    assert "'_state/'" in issue.message
    assert issue.value == "'gs://b/_state/ds/t/'"


def test_a_bucket_root_destination_is_fine_when_the_table_has_the_bucket_alone() -> None:
    text = BUCKETS + "exports:\n  - {source: ds.t, destination: 'gs://solo'}\n"
    assert load_config_text(text).table("t").destination == "gs://solo/"


# -- d. overlapping destinations --------------------------------------------------------


def test_overlaps_are_reported_once_at_the_later_table() -> None:
    text = BUCKETS + (
        "exports:\n"
        "  - {source: ds.outer, destination: 'gs://b/x/'}\n"
        "  - {source: ds.inner, destination: 'gs://b/x/y/'}\n"
        "  - {source: ds.twin, destination: 'gs://b/x/y'}\n"
    )
    issues = issues_of(text)
    assert [i.path for i in issues] == ["exports[1].destination", *["exports[2].destination"] * 2]
    inner, twin_outer, twin_inner = issues
    assert "ds.inner" in inner.message and "ds.outer (gs://b/x/)" in inner.message
    assert "a folder inside" in inner.message
    assert "ds.outer (gs://b/x/)" in twin_outer.message
    assert "the same folder as" in twin_inner.message and "ds.inner" in twin_inner.message
    assert twin_inner.value == "'gs://b/x/y'"


def test_section_tables_are_compared_by_their_default_destination() -> None:
    text = (
        "buckets: {exports: 'gs://b/'}\n"
        "exports:\n  - {source: ds.t, destination: 'gs://b/prod/'}\n"
        "append_only:\n  ds.events: {change_column: ts}\n"
    )
    issue = by_path(issues_of(text))['append_only["ds.events"]']
    assert "gs://b/prod/ds/events/" in issue.message and "ds.t" in issue.message


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("gs://b/ds/t/", "gs://b/ds/t_2/"),  # a name that starts like the other's
        ("gs://b/ds/t/", "s3://b/ds/t/"),  # other cloud, other store
        ("gs://b/ds/t/", "gs://c/ds/t/"),  # other bucket
        ("out/t/", "out/t2/"),
    ],
)
def test_neighbours_do_not_overlap(first: str, second: str) -> None:
    text = BUCKETS + (
        f"exports:\n  - {{source: ds.a, destination: '{first}'}}\n"
        f"  - {{source: ds.b, destination: '{second}'}}\n"
    )
    assert len(load_config_text(text).tables) == 2


def test_local_destinations_compare_as_absolute_folders() -> None:
    import os

    here = os.path.abspath("nested-out")
    text = BUCKETS + (
        f"exports:\n  - {{source: ds.a, destination: '{here}/'}}\n"
        "  - {source: ds.b, destination: 'nested-out/b'}\n"
    )
    issue = by_path(issues_of(text))["exports[1].destination"]
    assert "ds.a" in issue.message


# -- e. reserved source columns ---------------------------------------------------------


def _checked(extra: str, columns: list[str]) -> list[str]:
    cfg = load_config_text(BUCKETS + "exports:\n  - source: ds.t\n" + extra)
    return [i.value or "" for i in check_against_schemas(cfg, {"ds.t": columns})]


def test_reserved_columns_are_reported_at_the_source() -> None:
    cfg = load_config_text(BUCKETS + "exports:\n  - source: ds.t\n")
    issues = check_against_schemas(cfg, {"ds.t": ["id", "_Schema_Version", "__DP_k0", "__dp_x"]})
    assert [i.value for i in issues] == ["'_Schema_Version'", "'__DP_k0'", "'__dp_x'"]
    assert {i.path for i in issues} == {"exports[0].source"}
    assert all("reserved" in i.message and "ds.t" in i.message for i in issues)
    assert issues[0].line == 3


def test_the_configured_version_column_is_reserved_when_evolution_is_on() -> None:
    on = "    schema_evolution: {enabled: true, version_column: _v}\n"
    off = "    schema_evolution: {enabled: false, version_column: _v}\n"
    assert _checked(on, ["id", "_v"]) == ["'_v'"]
    assert _checked(off, ["id", "_v"]) == []
    assert _checked(off, ["id", "_schema_version"]) == ["'_schema_version'"]


def test_an_excluded_column_may_keep_a_reserved_name() -> None:
    extra = "    gdpr_compliance: {excluded_fields: [__dp_raw]}\n"
    assert _checked(extra, ["id", "__dp_raw"]) == []
    assert _checked("", ["id", "dp_raw", "_dp_x", "x__dp_"]) == []
