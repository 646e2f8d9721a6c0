"""Access and transport settings ``check`` refuses (issue 21, CONTRACT §11).

- A public member (``allUsers``, ``allAuthenticatedUsers``) in a bucket's
  ``iam_bindings``, unless that binding says ``allow_public: true``.
- ``encryption.in_transit.protocol`` below TLS 1.2 (any SSL version, TLS 1.0, TLS 1.1)
  or a text that names no TLS version.
- ``encryption.in_transit.certificate`` that is not a PEM file of certificate
  authorities (the spec's ``*.diagnosticpro.com`` names a server certificate, which a
  client cannot enforce).
- ``encryption.in_transit.cipher_suites`` naming a suite without encryption or
  authentication (``NULL``, ``eNULL``, ``aNULL``, ``anon``, ``ADH``, ``AECDH``), an
  export-grade one (``EXPORT``, ``EXP``), or one built on MD5, RC4 or DES (3DES too).

Like :mod:`dpexport.config.value_checks`, these read the normalised document and report
at each value's YAML path.
"""

from __future__ import annotations

import re
from typing import Any

from dpexport.config.issues import Issues

PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
#: the oldest TLS version dpexport accepts for connections to the stores
MIN_TLS = (1, 2)
_PROTOCOL = re.compile(r"^\s*(TLS|SSL)\s*v?\s*(\d+)(?:\.(\d+))?\s*\+?\s*$", re.IGNORECASE)
#: cipher-suite name parts (split at ``_``, ``-`` and spaces) that make a suite weak
WEAK_CIPHER_PARTS = {
    "NULL": "no encryption",
    "ENULL": "no encryption",
    "ANULL": "no authentication",
    "ANON": "no authentication (anonymous key exchange)",
    "ADH": "no authentication (anonymous key exchange)",
    "AECDH": "no authentication (anonymous key exchange)",
    "EXPORT": "export-grade (40/56-bit) keys",
    "EXP": "export-grade (40/56-bit) keys",
    "MD5": "MD5 message authentication",
    "RC4": "the RC4 stream cipher",
    "DES": "DES encryption",
    "3DES": "3DES encryption (64-bit blocks, Sweet32)",
    "DES40": "export-grade DES",
    "CBC3": "3DES encryption (64-bit blocks, Sweet32)",
}
GOOD_SUITES = "TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_GCM_SHA256"


def tls_version(text: str) -> tuple[str, tuple[int, int]] | None:
    """``('TLS', (1, 3))`` for 'TLS 1.3', 'TLSv1.3', 'tls1.3'; ``('SSL', (3, 0))`` for
    'SSLv3'; ``None`` for a text that names no version."""
    match = _PROTOCOL.match(text)
    if match is None:
        return None
    return match.group(1).upper(), (int(match.group(2)), int(match.group(3) or 0))


def weak_cipher(name: str) -> str | None:
    """Why the cipher suite ``name`` is refused, or ``None``."""
    for part in re.split(r"[_\-\s]+", name.upper()):
        why = WEAK_CIPHER_PARTS.get(part)
        if why is not None:
            return why
    return None


def check_access(data: dict[str, Any], issues: Issues) -> None:
    """Report public members without ``allow_public`` and weak in-transit settings."""
    policies = data.get("bucket_policies")
    for bucket, policy in policies.items() if isinstance(policies, dict) else ():
        bindings = policy.get("iam_bindings") if isinstance(policy, dict) else None
        for index, binding in enumerate(bindings if isinstance(bindings, list) else []):
            if isinstance(binding, dict):
                _check_binding(("bucket_policies", bucket, "iam_bindings", index), binding, issues)
    block = data.get("encryption")
    transit = block.get("in_transit") if isinstance(block, dict) else None
    if isinstance(transit, dict):
        _check_transit(transit, issues)


def _check_binding(path: tuple[Any, ...], binding: dict[str, Any], issues: Issues) -> None:
    if binding.get("allow_public") is True:
        return
    members = binding.get("members")
    for index, member in enumerate(members if isinstance(members, list) else []):
        if member in PUBLIC_MEMBERS:
            issues.add(
                (*path, "members", index),
                f"grants {binding.get('role')!s} to everyone on the internet"
                + (" with a Google account" if member == "allAuthenticatedUsers" else ""),
                value=member,
                expected="named members (serviceAccount:, group:, user:, domain:); or, if "
                "the bucket is meant to be public, allow_public: true on this binding",
            )


def _check_transit(transit: dict[str, Any], issues: Issues) -> None:
    protocol = transit.get("protocol")
    if isinstance(protocol, str):
        parsed = tls_version(protocol)
        why = None
        if parsed is None:
            why = "names no TLS version dpexport can require"
        elif parsed[0] == "SSL":
            why = "SSL is broken (POODLE, DROWN); connections need TLS 1.2 or later"
        elif parsed[1] < MIN_TLS:
            why = "TLS below 1.2 is deprecated (RFC 8996); connections need TLS 1.2 or later"
        if why is not None:
            issues.add(
                ("encryption", "in_transit", "protocol"),
                why,
                value=protocol,
                expected="'TLS 1.2' or 'TLS 1.3'",
                suggestion="TLS 1.3",
            )
    certificate = transit.get("certificate")
    if isinstance(certificate, str):
        from dpexport.security.transit import certificate_problem

        problem = certificate_problem(certificate)
        if problem is not None:
            issues.add(
                ("encryption", "in_transit", "certificate"),
                problem,
                value=certificate,
                expected="a PEM file of the certificate authorities to verify servers with "
                "(a private CA, a TLS-inspecting proxy), or no certificate: the system's",
            )
    suites = transit.get("cipher_suites")
    for index, suite in enumerate(suites if isinstance(suites, list) else []):
        weak = weak_cipher(suite) if isinstance(suite, str) else None
        if weak is not None:
            issues.add(
                ("encryption", "in_transit", "cipher_suites", index),
                f"a weak cipher suite: {weak}",
                value=suite,
                expected=f"AEAD suites such as {GOOD_SUITES}",
            )
