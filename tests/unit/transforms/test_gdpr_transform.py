"""GDPR anonymization: exact outputs of every rule, the keyed hash, and the key."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpexport.config.spec import GdprCompliance, Partitioning, TableSpec
from dpexport.errors import ConfigError, ExportError, InvalidArgument
from dpexport.transforms.gdpr import (
    GdprPlan,
    anonymize,
    gdpr_plan,
    load_hash_key,
    mask_value,
    truncate_ip,
    truncate_with_ipaddress,
    validate_gdpr_block,
)

KEY = b"0123456789abcdef0123456789abcdef"

SPEC_BLOCK = GdprCompliance(
    anonymization=(
        {"email": "hash_sha256"},
        {"phone": "mask_except_last_4"},
        {"ip_address": "truncate_last_octet"},
    ),
    excluded_fields=("password_hash", "security_questions"),
)


def spec(gdpr: GdprCompliance | None) -> TableSpec:
    return TableSpec(
        dataset="diagnosticpro_prod",
        table="users",
        destination="gs://b/prod/diagnosticpro_prod/users/",
        format="JSONL",
        compression="GZIP",
        mode="FULL_REFRESH",
        partitioning=Partitioning(),
        gdpr=gdpr,
    )


PLAN = GdprPlan(
    excluded=("password_hash",),
    rules=(("email", "hash_sha256"), ("phone", "mask_except_last_4"),
           ("ip_address", "truncate_last_octet")),
)  # fmt: skip


def test_plan_from_the_spec_block() -> None:
    plan = gdpr_plan(spec(SPEC_BLOCK))
    assert plan == GdprPlan(
        excluded=("password_hash", "security_questions"),
        rules=(("email", "hash_sha256"), ("phone", "mask_except_last_4"),
               ("ip_address", "truncate_last_octet")),
    )  # fmt: skip
    assert gdpr_plan(spec(None)) is None
    as_mapping = gdpr_plan(spec(GdprCompliance(anonymization={"email": "hash_sha256"})))
    assert as_mapping is not None and as_mapping.rules == (("email", "hash_sha256"),)


def test_bad_blocks_are_config_errors_with_suggestions() -> None:
    issues = validate_gdpr_block(
        {"anonymization": [{"email": "hash_sha265"}], "exclude_fields": ["x"]}, "exports[3].gdpr"
    )
    assert {i.path for i in issues} == {
        "exports[3].gdpr.anonymization[0].email",
        "exports[3].gdpr.exclude_fields",
    }
    assert {i.suggestion for i in issues} == {"hash_sha256", "excluded_fields"}
    with pytest.raises(ConfigError):
        gdpr_plan(spec(GdprCompliance(anonymization=({"email": "md5"},))))


def _expected_hmac(value: str, key: bytes = KEY) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def test_every_rule_exact_outputs() -> None:
    batch = pa.record_batch(
        {
            "id": [1, 2, 3, 4, 5],
            "email": ["a@x.com", None, "a@x.com", "ü@x.de", ""],
            "phone": ["555-123-4567", None, "1234", "12", "12345"],
            "ip_address": ["192.168.17.42", "2001:db8:85a3:8d3:1319:8a2e:370:7348", None,
                           "not an ip", "::ffff:10.1.2.3"],
        }
    )  # fmt: skip
    out = anonymize(batch, PLAN, KEY)
    assert out.column("id").to_pylist() == [1, 2, 3, 4, 5]
    assert out.column("email").to_pylist() == [
        _expected_hmac("a@x.com"), None, _expected_hmac("a@x.com"), _expected_hmac("ü@x.de"),
        _expected_hmac(""),
    ]  # fmt: skip
    assert out.column("phone").to_pylist() == ["********4567", None, "****", "**", "*2345"]
    assert out.column("ip_address").to_pylist() == [
        "192.168.17.0", "2001:db8:85a3:8d3::", None, None, "::ffff:10.1.2.0"
    ]  # fmt: skip
    assert out.schema.field("email").type == pa.string()


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("10.0.0.255", "10.0.0.0"),
        (" 8.8.8.8 ", "8.8.8.0"),
        ("fe80::1", "fe80::"),
        ("2001:db8::", "2001:db8::"),
        ("2001:0db8:0000:0042:ffff:ffff:ffff:ffff", "2001:db8:0:42::"),
        ("300.1.1.1", None),
        ("", None),
    ],
)
def test_truncate_ip(raw: str, want: str | None) -> None:
    assert truncate_ip(raw) == want


@pytest.mark.parametrize(
    "raw",
    ["01.2.3.4", "1.2.3.04", "1.2.3.00", "0.0.0.0", "255.255.255.255", "256.1.1.1",
     "1.2.3", "1.2.3.4.5", "1..2.3", "1.2.3.", "+1.2.3.4", "1.2.3.-4", "1.2.3.4 5",
     "\u0661.2.3.4", "1.2.3.\u00b2", "\t10.1.2.3\n", "1.2.3.1000", " 1.2.3.4/24"],
)  # fmt: skip
def test_truncate_ip_edge_cases_match_ipaddress(raw: str) -> None:
    assert truncate_ip(raw) == truncate_with_ipaddress(raw.strip())


_OCTET = st.one_of(
    st.integers(0, 999).map(str), st.from_regex(r"\A[0-9]{1,4}\Z"), st.text(max_size=3)
)


@given(st.lists(_OCTET, min_size=3, max_size=5).map(".".join), st.sampled_from(["", " ", "\n"]))
def test_truncate_ip_is_what_ipaddress_says(raw: str, pad: str) -> None:
    assert truncate_ip(pad + raw + pad) == truncate_with_ipaddress(raw.strip())


@given(st.ip_addresses())
def test_truncate_ip_of_any_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    assert truncate_ip(str(addr)) == truncate_with_ipaddress(str(addr))


def test_mask_keeps_length() -> None:
    assert mask_value("") == ""
    assert mask_value("abcd") == "****"
    assert mask_value("+1 (555) 000-1234") == "*" * 13 + "1234"


def test_hash_is_keyed_and_deterministic() -> None:
    batch = pa.record_batch({"email": ["a@x.com", "b@x.com"]})
    plan = GdprPlan((), (("email", "hash_sha256"),))
    one = anonymize(batch, plan, KEY).column("email").to_pylist()
    assert one == anonymize(batch, plan, KEY).column("email").to_pylist()
    other = anonymize(batch, plan, b"another key entirely").column("email").to_pylist()
    assert one[0] != other[0] and one[1] != other[1]
    assert one[0] != hashlib.sha256(b"a@x.com").hexdigest()  # never the unkeyed hash
    with pytest.raises(InvalidArgument):
        anonymize(batch, plan, b"")


def test_dictionary_and_large_string_inputs() -> None:
    dict_col = pa.array(["10.0.0.1", "10.0.0.2", None, "10.0.0.1"]).dictionary_encode()
    batch = pa.record_batch({"ip_address": dict_col, "phone": pa.array(["123456"] * 4,
                             pa.large_string())})  # fmt: skip
    plan = GdprPlan((), (("ip_address", "truncate_last_octet"), ("phone", "mask_except_last_4")))
    out = anonymize(batch, plan, KEY)
    assert out.column("ip_address").to_pylist() == ["10.0.0.0", "10.0.0.0", None, "10.0.0.0"]
    assert out.schema.field("phone").type == pa.large_string()
    assert out.column("phone").to_pylist() == ["**3456"] * 4


def test_non_string_column_is_anonymized_as_text() -> None:
    batch = pa.record_batch({"phone": pa.array([5551234567, None], pa.int64())})
    out = anonymize(batch, GdprPlan((), (("phone", "mask_except_last_4"),)), KEY)
    assert out.column("phone").to_pylist() == ["******4567", None]


def test_excluded_column_in_batch_is_refused() -> None:
    batch = pa.record_batch({"email": ["a@x.com"], "password_hash": ["h"]})
    with pytest.raises(InvalidArgument, match="password_hash"):
        anonymize(batch, PLAN, KEY)


def test_missing_anonymized_column_is_refused() -> None:
    batch = pa.record_batch({"email": ["a@x.com"]})
    with pytest.raises(InvalidArgument, match="phone"):
        anonymize(batch, PLAN, KEY)


def test_key_from_the_named_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USERS_HMAC_KEY", "s3cret-value")
    monkeypatch.delenv("DPEXPORT_HASH_KEY", raising=False)
    assert load_hash_key(spec(replace(SPEC_BLOCK, hash_key_env="USERS_HMAC_KEY")), None) == (
        b"s3cret-value"
    )
    monkeypatch.setenv("DPEXPORT_HASH_KEY", "default-var")
    assert load_hash_key(spec(SPEC_BLOCK), None) == b"default-var"


def test_missing_key_is_an_error_without_key_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DPEXPORT_HASH_KEY", raising=False)
    monkeypatch.setenv("OTHER_SECRET", "do-not-print-me")
    with pytest.raises(ExportError) as info:
        load_hash_key(spec(SPEC_BLOCK), None)
    assert info.value.code == "INVALID_ARGUMENT"
    assert "DPEXPORT_HASH_KEY" in str(info.value)
    assert "do-not-print-me" not in str(info.value)


def test_local_key_file_created_once_with_mode_0600(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DPEXPORT_HASH_KEY", raising=False)
    key = load_hash_key(spec(SPEC_BLOCK), tmp_path)
    path = tmp_path / "kms" / "gdpr-hash-key"
    assert len(key) == 32 and path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.stat().st_mtime_ns
    assert load_hash_key(spec(SPEC_BLOCK), tmp_path) == key
    assert path.stat().st_mtime_ns == before
    assert os.listdir(path.parent) == ["gdpr-hash-key"]  # no temporary left behind


def test_racing_processes_get_the_same_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DPEXPORT_HASH_KEY", raising=False)
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        keys.append(load_hash_key(spec(SPEC_BLOCK), tmp_path))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1


def test_empty_key_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DPEXPORT_HASH_KEY", raising=False)
    (tmp_path / "kms").mkdir()
    (tmp_path / "kms" / "gdpr-hash-key").write_bytes(b"")
    with pytest.raises(InvalidArgument, match="empty"):
        load_hash_key(spec(SPEC_BLOCK), tmp_path)
