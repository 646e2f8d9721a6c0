"""The Azure Key Vault key provider (azure-keyvault-keys) under the client-side envelope,
against the local stand-in of Key Vault's keys REST API (tests/keyvault_stand_in.py):
HTTPS, the bearer challenge, genuine RSA-OAEP-256 wrap and unwrap."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from dpexport.errors import DecryptionError, NotFound, PermissionDenied
from dpexport.security.crypto import read_header
from dpexport.security.keyvault import TOKEN_ENV, AzureKeyVaultKeyProvider, is_key_vault_key
from dpexport.security.kms import key_provider_for
from tests.conformance.test_kms import _round_trip
from tests.keyvault_stand_in import TOKEN, KeyVaultStandIn


@pytest.fixture
def vault(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KeyVaultStandIn]:
    stand_in = KeyVaultStandIn(tmp_path)
    stand_in.start()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stand_in.cert))
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    yield stand_in
    stand_in.stop()


def test_key_vault_envelope_round_trip_survives_rotation(vault: KeyVaultStandIn) -> None:
    key = vault.create_key("exports")
    provider = key_provider_for(key)
    assert isinstance(provider, AzureKeyVaultKeyProvider)
    with closing(provider):
        stored = _round_trip(provider, key)
        # the SDK read the public key, wrapped with it and asked the vault to unwrap
        posts = [c for c in vault.calls if c.startswith("POST")]
        assert len(posts) == 1 and posts[0].endswith("/unwrapkey")
        assert {c.split(" ")[0] for c in vault.calls} == {"GET", "POST"}
        vault.create_key("exports")  # a rotation: a new version becomes current
        header = read_header(io.BytesIO(stored))
        assert len(provider.unwrap(key, header.wrapped_key)) == 32
        tampered = header.wrapped_key[:-1] + bytes([header.wrapped_key[-1] ^ 1])
        with pytest.raises(DecryptionError) as err:
            provider.unwrap(key, tampered)
        assert key in str(err.value)
        with pytest.raises(DecryptionError):
            provider.unwrap(vault.create_key("other"), header.wrapped_key)
        with pytest.raises(NotFound) as missing:
            provider.wrap(f"{vault.url}/keys/absent", b"k" * 32)
        assert "absent" in str(missing.value)
    assert repr(provider) == "AzureKeyVaultKeyProvider()"


def test_without_keys_get_the_vault_wraps_and_unwraps(vault: KeyVaultStandIn) -> None:
    vault.forbid_get = True
    key = vault.create_key("exports")
    with closing(AzureKeyVaultKeyProvider()) as provider:
        _round_trip(provider, key)
    verbs = [c.rsplit("/", 1)[1] for c in vault.calls if c.startswith("POST")]
    assert verbs == ["wrapkey", "unwrapkey"]


def test_a_wrong_token_is_refused_by_the_vault(
    vault: KeyVaultStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = vault.create_key("exports")
    monkeypatch.setenv(TOKEN_ENV, "not-the-token")
    with closing(AzureKeyVaultKeyProvider()) as provider, pytest.raises(PermissionDenied) as err:
        provider.wrap(key, b"k" * 32)
    assert key in str(err.value)
    assert vault.calls == []


def test_key_vault_key_ids() -> None:
    assert is_key_vault_key("https://diagnosticpro-keys.vault.azure.net/keys/exports")
    assert is_key_vault_key("https://diagnosticpro-keys.vault.azure.net/keys/exports/0a1b")
    assert not is_key_vault_key("http://diagnosticpro-keys.vault.azure.net/keys/exports")
    assert not is_key_vault_key("https://diagnosticpro-keys.vault.azure.net/secrets/exports")
    assert not is_key_vault_key("diagnosticpro-keys")
