"""Spec 6.3's encryption words and what dpexport does for each (issue 17).

``at_rest`` describes every table that is not marked ``encryption: CMEK``: its files are
encrypted by the store with keys the cloud manages (GCS Google-managed keys, S3 SSE-S3,
Azure Microsoft-managed keys), all AES-256. ``at_rest.sensitive_data`` describes the
CMEK tables: a customer-managed key (the store's server-side encryption with that key
on a cloud, :mod:`dpexport.security.crypto`'s AES-256-GCM envelope on a local folder or
with ``client_side``). A value asking for anything else (another key kind, another
cipher) is something dpexport does not do, so ``check`` refuses it rather than accept
and ignore it.
"""

from __future__ import annotations

import re

from dpexport.security.crypto import ALGORITHM as ENVELOPE_ALGORITHM

#: ``at_rest.method``: the spec's wording first (the suggestion), then the short form
AT_REST_METHODS = ("Google-managed keys (GMEK)", "GMEK", "Google-managed keys")
#: ``at_rest.sensitive_data.method``
SENSITIVE_METHODS = ("Customer-managed keys (CMEK)", "CMEK", "Customer-managed keys")
#: ``at_rest.algorithm``: what the clouds' default encryption at rest uses
AT_REST_ALGORITHMS = ("AES-256", "AES256")
#: ``at_rest.sensitive_data.algorithm``: the envelope's cipher (AES-256 in GCM mode),
#: which is also AES-256 as the clouds' CMEK encryption uses it
SENSITIVE_ALGORITHMS = (ENVELOPE_ALGORITHM, "AES-256", "AES256")


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def _cipher(text: str) -> str:
    return re.sub(r"[\s_-]", "", text.upper())


def method_accepted(value: str, accepted: tuple[str, ...]) -> bool:
    """Whether ``value`` names the key kind of ``accepted`` (case and spacing aside)."""
    return _words(value) in {_words(a) for a in accepted}


def algorithm_accepted(value: str, accepted: tuple[str, ...]) -> bool:
    """Whether ``value`` names a cipher of ``accepted`` (``AES256`` = ``AES-256``)."""
    return _cipher(value) in {_cipher(a) for a in accepted}


#: ``cross_cloud.aws_s3.kms_master_key`` forms S3's SSE-KMS takes from dpexport
AWS_KEY_FORMS = "arn:aws:kms:REGION:ACCOUNT:key/ID (or :alias/NAME), or alias/NAME"


def is_aws_kms_key(name: str) -> bool:
    """Whether a run on S3 encrypts with ``name`` (SSE-KMS): asked of the function
    the run asks, so ``check`` and the run cannot disagree."""
    from dpexport.storage.cloud import server_side_encryption

    sse = server_side_encryption("s3", None, s3_kms_key=name)
    return sse is not None and sse.kms_key == name


def is_placeholder(name: str) -> bool:
    """The spec's own placeholder (``arn:aws:kms:us-east-1:...``): it names no key, so S3
    uses ``cross_cloud.aws_s3.sse``, as the run does."""
    return name.startswith("arn:aws:kms:") and name.rstrip().endswith("...")
