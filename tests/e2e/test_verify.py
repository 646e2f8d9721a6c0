"""`dpexport verify` catches a flipped byte, a deleted file and a truncated file, and names it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.cli import dpexport

TABLES = ("reddit_diagnostic_posts", "youtube_repair_videos", "parts_inventory")


@pytest.fixture
def exported(demo_dir: Path) -> Path:
    args: list[str | Path] = [
        "-c",
        demo_dir / "dpexport.yaml",
        "--local-root",
        demo_dir / "buckets",
        "run",
    ]
    for table in TABLES:
        args += ["--table", table]
    result = dpexport(*args)
    assert result.code == 0, result.err
    return demo_dir / "buckets"


def _first_file(root: Path, table_folder: str) -> tuple[Path, Path]:
    manifest = sorted((root / "gs").rglob(f"{table_folder}/**/manifest_*.json"))[0]
    name = json.loads(manifest.read_text())["files"][0]["name"]
    return manifest, manifest.parent / name


def _verify(root: Path, target: str | Path) -> tuple[int, str]:
    result = dpexport("--local-root", root, "verify", target)
    return result.code, result.out + result.err


def test_verify_ok_then_flipped_byte(exported: Path) -> None:
    _manifest, data = _first_file(exported, "reddit_diagnostic_posts")
    code, out = _verify(exported, "gs://diagnosticpro-exports/prod/")
    assert code == 0, out
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    data.write_bytes(bytes(raw))
    code, out = _verify(exported, "gs://diagnosticpro-exports/prod/")
    assert code == 1
    assert f"FAIL {data.relative_to(exported / 'gs' / 'diagnosticpro-exports')}" in out
    assert "sha256 does not match" in out


def test_verify_deleted_file(exported: Path) -> None:
    manifest, data = _first_file(exported, "youtube_videos")
    data.unlink()
    code, out = _verify(exported, manifest)  # a plain local path to the manifest
    assert code == 1
    assert data.name in out and "missing" in out


def test_verify_truncated_file(exported: Path) -> None:
    _manifest, data = _first_file(exported, "parts_inventory")
    raw = data.read_bytes()
    data.write_bytes(raw[: len(raw) - 7])
    code, out = _verify(
        exported, "gs://diagnosticpro-exports/prod/diagnosticpro_prod/parts_inventory/"
    )
    assert code == 1
    assert data.name in out and "truncated" in out


def test_verify_unlisted_data_file(exported: Path) -> None:
    manifest, data = _first_file(exported, "parts_inventory")
    stray = data.with_name(data.name.replace(".parquet", "_999.parquet"))
    stray.write_bytes(data.read_bytes())
    code, out = _verify(exported, manifest.parent)
    assert code == 1
    assert stray.name in out and "not listed in any manifest" in out


def test_verify_nothing_there(tmp_path: Path) -> None:
    code, out = _verify(tmp_path, "gs://nothing-here/prod/")
    assert code == 1
    assert "no manifest found" in out
