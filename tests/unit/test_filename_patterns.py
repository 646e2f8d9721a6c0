"""``layout.FileNames``: every name a valid ``filenames`` pattern makes parses back to its
parts, is a data file, and its sidecar is a sidecar and not a data file; the default
patterns give CONTRACT §4's names; ``layout.problems`` refuses what cannot work."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpexport.config.issues import closest
from dpexport.storage import layout

PATTERNS = [
    layout.DEFAULT_PATTERN,
    "{yyyymmdd}-{entity}-{uuid}.{format}.{compression}",
    "{entity}.{uuid}.{compression}.{format}",
    "export_{uuid}-{entity}_{HHMMSS}{yyyymmdd}.{format}.{compression}",
    "{entity}_{uuid}-{compression}.{format}",
]
SIDECARS = [layout.DEFAULT_SIDECAR, "{filename}.meta.json", "meta_{filename}.json"]
NAMES = st.text(st.characters(exclude_characters="/"), min_size=1)
HEX8 = st.text("0123456789abcdef", min_size=8, max_size=8)
STARTS = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31))
SUFFIXES = st.builds(
    layout.file_suffix,
    st.sampled_from(["PARQUET", "JSONL", "CSV"]),
    st.sampled_from(["SNAPPY", "ZSTD", "GZIP", "BROTLI", "NONE"]),
    encrypted=st.booleans(),
)


@given(
    st.sampled_from(PATTERNS),
    st.sampled_from(SIDECARS),
    NAMES,
    STARTS,
    HEX8,
    st.none() | st.integers(min_value=1, max_value=10**4),
    SUFFIXES,
)
def test_names_parse_back_and_sidecars_are_not_data(
    pattern: str,
    sidecar: str,
    entity: str,
    start: datetime,
    uuid8: str,
    seq: int | None,
    suffix: str,
) -> None:
    names = layout.FileNames(pattern, sidecar)
    name = names.data(entity, start, uuid8, seq, suffix)
    parsed = names.parse(name)
    assert parsed is not None, name
    assert (parsed.entity, parsed.uuid8, parsed.seq) == (entity, uuid8, seq)
    held = zip(("{yyyymmdd}", "{HHMMSS}"), layout.stamp(start).split("_"), strict=True)
    assert parsed.stamp == "_".join(part for field, part in held if field in pattern)
    assert parsed.suffix.split(".")[0] == suffix.split(".")[0]
    assert names.is_data_file(name) and not names.is_sidecar(name)
    side = names.sidecar_of("a/b/" + name)
    assert side.startswith("a/b/") and names.is_sidecar(layout.key_name(side))
    assert not names.is_data_file(layout.key_name(side))


def test_the_default_patterns_are_contract_4s() -> None:
    start = datetime(2025, 9, 16, 14, 30, 22)
    assert layout.DEFAULT_NAMES.data("users", start, "7f3b4e5a", None, "parquet.snappy") == (
        "users_20250916_143022_7f3b4e5a.parquet.snappy"
    )
    assert layout.DEFAULT_NAMES.data("p", start, "9e7f1c3d", 2, "csv") == (
        "p_20250916_143022_9e7f1c3d_002.csv"
    )
    assert layout.DEFAULT_NAMES.sidecar_of("x/f.csv") == "x/f.csv.metadata.json"
    assert layout.DEFAULT_NAMES.manifest_block() is None
    custom = layout.FileNames(PATTERNS[1], SIDECARS[1])
    assert custom.data("users", start, "7f3b4e5a", 12, "jsonl.gz.enc") == (
        "20250916-users-7f3b4e5a_012.jsonl.gz.enc"
    )
    assert layout.FileNames.of_manifest({"filenames": custom.manifest_block()}) == custom
    assert layout.FileNames.of_manifest({}) == layout.DEFAULT_NAMES


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("sidecar", SIDECARS)
def test_valid_patterns_pass(pattern: str, sidecar: str) -> None:
    assert layout.problems(pattern, sidecar, closest) == []


@pytest.mark.parametrize(
    ("pattern", "sidecar", "key", "suggestion"),
    [
        ("{entity}_{uuid}.{fromat}", layout.DEFAULT_SIDECAR, "pattern", "{entity}_{uuid}.{format}"),
        ("{entity}.{format}", layout.DEFAULT_SIDECAR, "pattern", "{entity}_{uuid}.{format}"),
        ("{uuid}.{format}", layout.DEFAULT_SIDECAR, "pattern", "{entity}_{uuid}.{format}"),
        ("{entity}/{uuid}", layout.DEFAULT_SIDECAR, "pattern", "{entity}_{uuid}"),
        (layout.DEFAULT_PATTERN, "{file}.json", "metadata_sidecar", "{filename}.json"),
        (layout.DEFAULT_PATTERN, ".meta.json", "metadata_sidecar", "{filename}.meta.json"),
        (layout.DEFAULT_PATTERN, "{filename}", "metadata_sidecar", layout.DEFAULT_SIDECAR),
        (layout.DEFAULT_PATTERN, "{filename}.enc", "metadata_sidecar", layout.DEFAULT_SIDECAR),
    ],
)
def test_patterns_that_cannot_work_are_refused(
    pattern: str, sidecar: str, key: str, suggestion: str
) -> None:
    [problem] = layout.problems(pattern, sidecar, closest)
    assert (problem.key, problem.suggestion) == (key, suggestion)
