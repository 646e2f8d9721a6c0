"""``check`` names each present key that is accepted but not enforced yet, on stderr,
from config.coverage's one table, and still exits 0 (issue 17)."""

from __future__ import annotations

from pathlib import Path

from dpexport.config.coverage import NOT_ENFORCED_YET
from tests.e2e.cli import dpexport


def test_check_notes_the_keys_not_enforced_yet(demo_dir: Path) -> None:
    result = dpexport("-c", demo_dir / "dpexport.yaml", "check")
    assert result.code == 0, result.err
    if NOT_ENFORCED_YET:
        assert "accepted, not enforced yet (issue 21)" in result.err, result.err
    assert "not enforced yet" not in result.out
    # issue 21's keys take effect: rotation (lifecycle apply) and the Key Vault provider
    for key in ("encryption.at_rest.key_rotation", "encryption.cross_cloud.azure_blob.key_vault"):
        assert key not in result.err
    assert "(issue 17)" not in result.err  # every setting of issue 17's takes effect
    assert "(issue 20)" not in result.err  # alert thresholds and trigger_alert take effect
