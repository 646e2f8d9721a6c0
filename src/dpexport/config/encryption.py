"""A table's encryption (spec 6.3, 8.3): CMEK and the key it names, which may be an
Azure Key Vault key (``azure-kv://NAME`` in ``cross_cloud.azure_blob.key_vault``)."""

from __future__ import annotations

from dpexport.config.issues import Issues
from dpexport.config.loader import Path
from dpexport.config.models import DpexportConfig, ExportItem
from dpexport.config.spec import Encryption


def table_encryption(
    model: DpexportConfig, item: ExportItem | None, ip: Path, issues: Issues
) -> Encryption:
    """An ``exports`` item's ``encryption: CMEK`` and its key (the item's ``kms_key``,
    else spec 6.3's ``sensitive_data.kms_key``); a key with none is an issue."""
    if item is None or (item.encryption or "").upper() != "CMEK":
        return Encryption()
    at_rest = model.encryption.at_rest
    key = item.kms_key or (
        at_rest.sensitive_data.kms_key if at_rest and at_rest.sensitive_data else None
    )
    if not key:
        issues.add(
            (*ip, "encryption"),
            "CMEK needs a key",
            expected="encryption.at_rest.sensitive_data.kms_key or the item's kms_key",
        )
    elif (vault_key := _vault_key(model, key, ip, issues)) is not None:
        key = vault_key
    return Encryption(mode="CMEK", kms_key=key, client_side=bool(item.client_side))


def _vault_key(model: DpexportConfig, key: str, ip: Path, issues: Issues) -> str | None:
    """``azure-kv://NAME``: the key in ``cross_cloud.azure_blob.key_vault`` (issue 21)."""
    from dpexport.security.keyvault import vault_key_id

    cross = model.encryption.cross_cloud
    vault = cross.azure_blob.key_vault if cross and cross.azure_blob else None
    resolved = vault_key_id(key, vault)
    if resolved is None:
        issues.add(
            (*ip, "kms_key"),
            "names a Key Vault key but no vault is configured",
            value=key,
            expected="encryption.cross_cloud.azure_blob.key_vault: VAULT_NAME, or the key id "
            "https://VAULT.vault.azure.net/keys/NAME",
        )
    return resolved
