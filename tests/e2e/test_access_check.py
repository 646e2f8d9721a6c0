"""``check`` refuses spec 6.2/6.3 settings that open a bucket or weaken transport
(issue 21, CONTRACT §11): a public member without ``allow_public: true``, in-transit TLS
below 1.2, a NULL / export-grade / MD5 / RC4 / DES / anonymous cipher suite. Each is
exit 2 at its YAML path, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpexport.config.security_check import tls_version, weak_cipher
from tests.alert_servers import self_signed
from tests.e2e.cli import dpexport

CONFIG = """\
project: p
environment: test
warehouse: {{engine: duckdb, path: warehouse.duckdb}}
buckets: {{exports: gs://b}}
exports:
  - source: ds.events
    destination: gs://b/events/
    mode: FULL_REFRESH
bucket_policies:
  b:
    uniform_access: true
    iam_bindings:
      - role: "roles/storage.objectViewer"
        members: ["group:data-analysts@diagnosticpro.com", "{member}"]{allow}
encryption:
  in_transit:
    protocol: "{protocol}"
    cipher_suites: ["TLS_AES_256_GCM_SHA384", "{cipher}"]{certificate}
"""
GOOD = {
    "member": "serviceAccount:analytics-reader@p.iam.gserviceaccount.com",
    "allow": "",
    "protocol": "TLS 1.3",
    "cipher": "TLS_CHACHA20_POLY1305_SHA256",
    "certificate": "",
}


def _config(tmp_path: Path, **words: str) -> Path:
    path = tmp_path / "dpexport.yaml"
    path.write_text(CONFIG.format(**{**GOOD, **words}), encoding="utf-8")
    return path


def _check(tmp_path: Path, config: Path) -> tuple[int, str]:
    result = dpexport("-c", config, "--local-root", tmp_path / "out", "check")
    assert not (tmp_path / "out").exists()
    return result.code, result.err


def test_the_spec_words_pass_check(tmp_path: Path) -> None:
    code, err = _check(tmp_path, _config(tmp_path))
    assert code == 0, err


def test_a_certificate_name_is_refused_and_a_ca_file_passes(tmp_path: Path) -> None:
    """Spec 6.3's ``certificate: "*.diagnosticpro.com"`` names a server's certificate,
    which a client cannot enforce: refused at its path; a PEM file of CAs passes."""
    spec = _config(tmp_path, certificate='\n    certificate: "*.diagnosticpro.com"')
    code, err = _check(tmp_path, spec)
    assert code == 2
    assert "encryption.in_transit.certificate" in err
    assert "*.diagnosticpro.com" in err and "a PEM file of the certificate authorities" in err
    missing = _config(tmp_path, certificate=f"\n    certificate: {tmp_path / 'none.pem'}")
    code, err = _check(tmp_path, missing)
    assert code == 2 and "no such file" in err
    ca, _ = self_signed(tmp_path)
    code, err = _check(tmp_path, _config(tmp_path, certificate=f"\n    certificate: {ca}"))
    assert code == 0, err


@pytest.mark.parametrize("member", ["allUsers", "allAuthenticatedUsers"])
def test_a_public_member_is_refused_at_its_path(tmp_path: Path, member: str) -> None:
    code, err = _check(tmp_path, _config(tmp_path, member=member))
    assert code == 2, err
    line = next(x for x in err.splitlines() if "bucket_policies.b.iam_bindings[0].members[1]:" in x)
    assert member in line and "roles/storage.objectViewer" in line
    assert "allow_public: true" in err


@pytest.mark.parametrize("member", ["allUsers", "allAuthenticatedUsers"])
def test_allow_public_true_lets_a_public_member_pass(tmp_path: Path, member: str) -> None:
    config = _config(tmp_path, member=member, allow="\n        allow_public: true")
    code, err = _check(tmp_path, config)
    assert code == 0, err


@pytest.mark.parametrize("protocol", ["TLS 1.0", "TLSv1.1", "TLS1.0", "SSLv3", "SSL 2.0", "1.3"])
def test_in_transit_below_tls_1_2_is_refused(tmp_path: Path, protocol: str) -> None:
    code, err = _check(tmp_path, _config(tmp_path, protocol=protocol))
    assert code == 2, err
    line = next(x for x in err.splitlines() if "encryption.in_transit.protocol:" in x)
    assert protocol in line and "TLS 1.2" in line


@pytest.mark.parametrize("protocol", ["TLS 1.2", "TLSv1.3", "tls1.3", "TLS 1.2+"])
def test_tls_1_2_and_later_pass(tmp_path: Path, protocol: str) -> None:
    code, err = _check(tmp_path, _config(tmp_path, protocol=protocol))
    assert code == 0, err


@pytest.mark.parametrize(
    ("cipher", "why"),
    [
        ("TLS_RSA_WITH_NULL_SHA256", "no encryption"),
        ("TLS_RSA_EXPORT_WITH_RC4_40_MD5", "export-grade"),
        ("EXP-DES-CBC-SHA", "export-grade"),
        ("TLS_RSA_WITH_RC4_128_MD5", "RC4"),
        ("SSL_RSA_WITH_RC4_128_MD5", "RC4"),
        ("DES-CBC3-SHA", "DES"),
        ("TLS_DH_anon_WITH_AES_128_CBC_SHA", "no authentication"),
    ],
)
def test_a_weak_cipher_suite_is_refused_at_its_path(tmp_path: Path, cipher: str, why: str) -> None:
    code, err = _check(tmp_path, _config(tmp_path, cipher=cipher))
    assert code == 2, err
    line = next(x for x in err.splitlines() if "encryption.in_transit.cipher_suites[1]:" in x)
    assert cipher in line and why in line


def test_protocol_and_cipher_parsing() -> None:
    assert tls_version("TLS 1.3") == ("TLS", (1, 3))
    assert tls_version("TLSv1.2") == ("TLS", (1, 2))
    assert tls_version("SSLv3") == ("SSL", (3, 0))
    assert tls_version("QUIC") is None
    assert weak_cipher("TLS_AES_128_GCM_SHA256") is None
    assert weak_cipher("ECDHE-RSA-AES256-GCM-SHA384") is None
    assert weak_cipher("ECDHE-RSA-DES-CBC3-SHA") is not None
