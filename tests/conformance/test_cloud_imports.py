"""No cloud SDK is imported by ``import dpexport`` or ``dpexport --help``; a missing SDK
is a UsageError that names the extra to install; cloud URIs open their backends."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dpexport.errors import UsageError
from dpexport.storage.uri import StoreResolver

SDKS = ("boto3", "botocore", "google.cloud.storage", "google.cloud.kms", "azure.storage.blob")


@pytest.mark.parametrize(
    "code",
    [
        "import dpexport, dpexport.storage.uri, dpexport.storage.probe",
        "import sys; sys.argv = ['dpexport', '--help']\n"
        "from dpexport.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass",
    ],
)
def test_no_sdk_imported(code: str) -> None:
    check = f"{code}\nimport sys\nprint([m for m in {SDKS!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("uri", "module", "extra"),
    [
        ("s3://b/k", "boto3", "s3"),
        ("gs://b/k", "google.cloud.storage", "gcs"),
        ("az://c/k", "azure.storage.blob", "azure"),
    ],
)
def test_missing_sdk_names_the_extra(
    uri: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(UsageError) as err:
        StoreResolver().resolve(uri)
    assert f"pip install 'dpexport[{extra}]'" in str(err.value)
    assert err.value.exit_code == 2
