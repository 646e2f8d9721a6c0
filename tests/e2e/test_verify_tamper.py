"""`dpexport verify` on a real export that was then tampered with (issue 18, case 9): a
manifest of the wrong shape, a deleted manifest, SUCCESS or sidecar, a garbled sidecar or
one that disagrees with its manifest, a stray data file. Each is one ``FAIL`` line naming
the object and what is wrong, exit 1, never a traceback; on a local folder and on S3.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpexport import api
from tests.conformance.servers import server_env, unique_bucket
from tests.e2e.cli import dpexport

AT = "2025-09-16T12:00:00Z"
TABLES = ("parts_inventory", "billing_transactions", "youtube_repair_videos")
BUCKET = "diagnosticpro-exports"
PREFIX = f"gs://{BUCKET}/prod/"
PARTS = "prod/diagnosticpro_prod/parts_inventory/2025/09/16/"
#: a folder of each kind the mutations try: Parquet, client-side encrypted, JSONL + GZIP
MUTATED = (
    PARTS,
    "prod/diagnosticpro_prod/financial/2025/09/",
    "prod/diagnosticpro_prod/youtube_videos/",
)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export of TABLES to a local root, made once; tests tamper with copies."""
    from dpexport.demo import example_config_text
    from dpexport.demo.warehouse import create_demo_warehouse

    base = tmp_path_factory.mktemp("verify-tamper")
    create_demo_warehouse(base / "warehouse.duckdb", 300)
    (base / "dpexport.yaml").write_text(example_config_text(), encoding="utf-8")
    args: list[str | Path] = ["-c", base / "dpexport.yaml", "--local-root", base / "buckets"]
    args += ["run", "--at", AT]
    for table in TABLES:
        args += ["--table", table]
    result = dpexport(*args, cwd=base)
    assert result.code == 0, result.err
    return base


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    """A copy of the pristine export's local root, to tamper with."""
    shutil.copytree(pristine / "buckets", tmp_path / "buckets")
    return tmp_path / "buckets"


def _folder(root: Path) -> Path:
    return root / "gs" / BUCKET / PARTS


def _manifest(root: Path) -> tuple[Path, dict[str, Any]]:
    [path] = sorted(_folder(root).glob("manifest_*.json"))
    return path, json.loads(path.read_text())


def _data(root: Path) -> Path:
    _path, doc = _manifest(root)
    return _folder(root) / doc["files"][0]["name"]


def _sidecar(root: Path) -> Path:
    data = _data(root)
    return data.with_name(data.name + ".metadata.json")


def _verify(root: Path, target: str | Path = PREFIX) -> tuple[int, str]:
    result = dpexport("--local-root", root, "verify", target)
    return result.code, result.out + result.err


def _fails(out: str, key: str, *words: str) -> None:
    """``out`` has a FAIL line for ``key`` holding every one of ``words``; no traceback."""
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.startswith(f"FAIL {key}")]
    assert any(all(w in line for w in words) for line in lines), out


def test_pristine_export_verifies(root: Path) -> None:
    code, out = _verify(root)
    assert code == 0, out
    code, out = _verify(root, _manifest(root)[0])  # one manifest, by its local path
    assert code == 0, out


def test_manifest_files_not_a_list(root: Path) -> None:
    path, doc = _manifest(root)
    doc["files"] = 5
    path.write_text(json.dumps(doc))
    code, out = _verify(root)
    assert code == 1
    _fails(out, PARTS + path.name, "files", "5", "list")
    # its data file is listed by no readable manifest now: not part of the export
    _fails(out, PARTS + _data_name(root), "not listed")


def _data_name(root: Path) -> str:
    return next(p.name for p in _folder(root).iterdir() if p.name.endswith(".snappy"))


@pytest.mark.parametrize(
    ("where", "value", "words"),
    [
        (("statistics",), "many", ("statistics", "object")),
        (("statistics", "row_count"), "30", ("statistics.row_count", "'30'")),
        (("files", 0, "checksum"), 5, ("files[0].checksum", "sha256:")),
        (("files", 0, "rows"), "30", ("files[0].rows", "'30'")),
        (("files", 0, "rows"), True, ("files[0].rows", "True")),
        (("files", 0, "name"), "../../x.parquet", ("files[0].name", "../../x.parquet")),
        (("files", 0), [1, 2], ("files[0]", "object")),
        (("destination",), None, ("destination", "object")),
        (("destination", "format"), "XLS", ("destination.format", "XLS")),
        (("encryption",), "yes", ("encryption", "object")),
        (("jsonl",), [1], ("jsonl", "object")),
        ((), [], ("manifest", "object")),
    ],
)
def test_manifest_field_of_the_wrong_type(
    root: Path, where: tuple[str | int, ...], value: object, words: tuple[str, ...]
) -> None:
    path, doc = _manifest(root)
    if where:
        parent: Any = doc
        for step in where[:-1]:
            parent = parent[step]
        parent[where[-1]] = value
    else:
        doc = value  # type: ignore[assignment]
    path.write_text(json.dumps(doc))
    code, out = _verify(root)
    assert code == 1, out
    _fails(out, PARTS + path.name, *words)


def test_deleted_manifest(root: Path) -> None:
    path, _doc = _manifest(root)
    data = _data(root)
    path.unlink()
    code, out = _verify(root)  # other folders still have their manifests
    assert code == 1, out
    _fails(out, PARTS + "SUCCESS", "names missing manifest", path.name)
    _fails(out, PARTS + data.name, "not listed in any manifest")


def test_deleted_manifest_and_success(root: Path) -> None:
    """Published data (it has its sidecar) in a folder with neither manifest nor SUCCESS."""
    path, _doc = _manifest(root)
    data = _data(root)
    path.unlink()
    (_folder(root) / "SUCCESS").unlink()
    code, out = _verify(root)
    assert code == 1, out
    _fails(out, PARTS + data.name, "not listed in any manifest")


def test_deleted_success(root: Path) -> None:
    (_folder(root) / "SUCCESS").unlink()
    code, out = _verify(root)
    assert code == 1, out
    _fails(out, PARTS + "SUCCESS", "missing")
    code, out = _verify(root, _manifest(root)[0])  # also when one manifest is verified
    assert code == 1, out
    _fails(out, "SUCCESS", "missing")  # a plain path: keys are relative to its folder


def test_manifest_not_named_by_success(root: Path) -> None:
    success = _folder(root) / "SUCCESS"
    marker = json.loads(success.read_text())
    marker["manifests"] = []
    success.write_text(json.dumps(marker))
    code, out = _verify(root)
    assert code == 1, out
    _fails(out, PARTS + _manifest(root)[0].name, "not named by SUCCESS")


@pytest.mark.parametrize("garbage", ["[1, 2]", '{"status": ', '"SUCCESS"'])
def test_garbled_success(root: Path, garbage: str) -> None:
    (_folder(root) / "SUCCESS").write_text(garbage)
    code, out = _verify(root)
    assert code == 1, out
    _fails(out, PARTS + "SUCCESS", "SUCCESS")


def test_deleted_sidecar(root: Path) -> None:
    sidecar = _sidecar(root)
    sidecar.unlink()
    code, out = _verify(root)
    assert code == 1, out
    _fails(out, PARTS + sidecar.name, "missing")


@pytest.mark.parametrize("garbage", ['{"name": ', "[]", "null"])
def test_garbled_sidecar(root: Path, garbage: str) -> None:
    sidecar = _sidecar(root)
    sidecar.write_text(garbage)
    code, out = _verify(root)
    assert code == 1, out
    _fails(out, PARTS + sidecar.name, "unreadable sidecar")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("rows", 31),
        ("checksum", "sha256:" + "0" * 64),
        ("bytes", 1),
        ("name", "other.parquet.snappy"),
        ("format", "CSV"),
        ("export_id", "exp_20250101_000000_00000000"),
    ],
)
def test_sidecar_disagrees_with_manifest(root: Path, key: str, value: object) -> None:
    sidecar = _sidecar(root)
    doc = json.loads(sidecar.read_text())
    doc[key] = value
    sidecar.write_text(json.dumps(doc))
    code, out = _verify(root)
    assert code == 1, out
    _fails(out, PARTS + sidecar.name, key, repr(value))


def test_stray_data_file(root: Path) -> None:
    data = _data(root)
    stray = data.with_name("extra.parquet")
    shutil.copyfile(data, stray)
    code, out = _verify(root)
    assert code == 1, out
    _fails(out, PARTS + stray.name, "not listed in any manifest")


# -- mutations of a real manifest's values: a problem, never a traceback ----------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)


def _paths(doc: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    yield path
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, (*path, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _paths(value, (*path, i))


def _replace(doc: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(doc))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return copy


#: the manifest values verify holds the files to: changing one must fail verify
_CHECKED = (
    ("files",),
    ("files", 0),
    ("files", 0, "name"),
    ("files", 0, "rows"),
    ("files", 0, "bytes"),
    ("files", 0, "checksum"),
    ("destination",),
    ("destination", "format"),
    ("destination", "compression"),
    ("statistics", "row_count"),
    ("export_id",),
)


@pytest.fixture(scope="module")
def mutable(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("verify-mutations") / "buckets"
    shutil.copytree(pristine / "buckets", root)
    return root


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_manifest_is_a_problem_not_a_traceback(mutable: Path, data: st.DataObject) -> None:
    folder = mutable / "gs" / BUCKET / data.draw(st.sampled_from(MUTATED), label="folder")
    path = sorted(folder.rglob("manifest_*.json"))[0]
    doc = json.loads(path.read_text())
    original = path.read_bytes()
    checked = data.draw(st.booleans(), label="checked path")
    if checked:
        where = data.draw(st.sampled_from(_CHECKED), label="path")
    else:
        where = data.draw(st.sampled_from(sorted(_paths(doc), key=repr)), label="path")
    old: Any = doc
    for step in where:
        old = old[step]
    value = data.draw(_VALUES, label="value")
    if value == old and type(value) is type(old):
        return
    try:
        path.write_text(json.dumps(_replace(doc, where, value)))
        report = api.verify(str(path.parent), local_root=mutable)
        lines = list(report.lines())
    finally:
        path.write_bytes(original)
    assert all(isinstance(line, str) for line in lines)
    if checked:
        assert not report.ok, lines


# -- the same checks on S3 (moto) ------------------------------------------------------


@pytest.fixture
def s3_export(pristine: Path) -> Iterator[tuple[str, Callable[[], Any]]]:
    """(bucket URI, its store) of parts_inventory exported to a fresh moto bucket."""
    server_env("AWS_ENDPOINT_URL", "the S3 server (moto)")
    import boto3

    from dpexport.storage.uri import StoreResolver

    name = unique_bucket("verify")
    client = boto3.session.Session().client("s3")
    client.create_bucket(Bucket=name)
    config = pristine / f"dpexport-{name}.yaml"
    text = (pristine / "dpexport.yaml").read_text(encoding="utf-8")
    config.write_text(text.replace(f"gs://{BUCKET}", f"s3://{name}"), encoding="utf-8")
    result = dpexport("-c", config, "run", "--at", AT, "--table", "parts_inventory", cwd=pristine)
    assert result.code == 0, result.err
    store, _ = StoreResolver().resolve(f"s3://{name}/")
    yield f"s3://{name}", lambda: store
    getattr(store, "close", lambda: None)()
    client.close()


def test_tampering_on_s3(s3_export: tuple[str, Callable[[], Any]], pristine: Path) -> None:
    bucket, store_of = s3_export
    store = store_of()

    def verify() -> tuple[int, str]:
        result = dpexport("verify", bucket + "/prod/", cwd=pristine)
        return result.code, result.out + result.err

    code, out = verify()
    assert code == 0, out
    [manifest] = [o.key for o in store.list(PARTS) if "/manifest_" in o.key]
    [sidecar] = [o.key for o in store.list(PARTS) if o.key.endswith(".metadata.json")]
    doc = json.loads(store.get(sidecar))
    doc["rows"] += 1
    store.put_bytes(sidecar, json.dumps(doc).encode())
    code, out = verify()
    assert code == 1
    _fails(out, sidecar, "rows")
    store.delete(PARTS + "SUCCESS")
    code, out = verify()
    assert code == 1
    _fails(out, PARTS + "SUCCESS", "missing")
    store.put_bytes(manifest, b'{"files": 5}')
    code, out = verify()
    assert code == 1
    _fails(out, manifest, "files")
