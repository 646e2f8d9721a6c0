"""What happens to rows between the engine and the writers, for one table.

GDPR anonymization, the ``_schema_version`` column, client-side encryption and the
named checks are decided here once per export, so the runner only calls
``apply`` on each batch and ``open_writer`` for each file.
"""

from __future__ import annotations

import functools
import json
import logging
import struct
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from dpexport.checks import CheckContext, CheckRun
from dpexport.config.spec import ResolvedConfig, TableSpec
from dpexport.engines.base import Engine, ScanRequest
from dpexport.errors import ExportError, NotFound, UsageError
from dpexport.formats import open_writer, read_file
from dpexport.formats.base import FormatWriter, WrittenFile
from dpexport.publish.manifest import dumps
from dpexport.security.crypto import Encryptor, KeyProvider, LocalKeyProvider
from dpexport.storage import layout
from dpexport.storage.base import Store, innermost
from dpexport.storage.local import LocalStore
from dpexport.transforms.gdpr import GdprPlan, anonymize, gdpr_plan, load_hash_key

log = logging.getLogger(__name__)


def stats_key(spec: TableSpec) -> str:
    return layout.check_stats_key(spec.dataset, spec.table)


def server_side_store(store: Store, spec: TableSpec, config: ResolvedConfig) -> Store:
    """The store a table writes through: its server-side encryption (CMEK) and, on a
    store that locks objects (S3 Object Lock), its retention."""
    return _retained_store(_encrypted_store(store, spec, config), spec, config)


def _retained_store(store: Store, spec: TableSpec, config: ResolvedConfig) -> Store:
    """On S3, the same bucket putting the table's objects (under its destination and its
    replicas' folders on this bucket) under a governance-mode Object Lock for the
    table's retention (CONTRACT §12). Other stores have no per-object lock that
    dpexport sets; ``lifecycle`` says so, and dpexport's own deletions check
    :mod:`dpexport.ops.retention` everywhere."""
    from dpexport.ops.retention import table_retention

    keep = table_retention(spec)
    with_retention = getattr(innermost(store), "with_retention", None)
    if keep is None or with_retention is None:
        return store
    uris = [spec.destination] + [
        layout.replica_destination(item.target, spec.dataset, spec.table)
        for item in config.replication
        if {spec.table, spec.qualified_name} & set(item.tables)
    ]
    root = store.url.rstrip("/") + "/"
    prefixes = tuple(u[len(root) :] for u in uris if u.startswith(root))
    if not prefixes:
        return store
    locked: Store = with_retention(keep, prefixes)
    retrier = getattr(store, "retrier", None)
    if retrier is not None and hasattr(store, "inner"):
        from dpexport.reliability.retry import RetryingStore

        locked = RetryingStore(locked, retrier)
    return locked


def _encrypted_store(store: Store, spec: TableSpec, config: ResolvedConfig) -> Store:
    """The store a CMEK table writes through: on a cloud store, the same bucket writing
    with the server-side encryption spec 6.3 names (GCS kms_key_name, S3 SSE, Azure
    encryption scope). A CMEK table is never written unencrypted: if the cloud has
    nothing to apply, the export fails and says what to configure."""
    if (
        spec.encryption.mode != "CMEK"
        or spec.encryption.client_side
        or isinstance(innermost(store), LocalStore)
    ):
        return store
    from dpexport.storage.cloud import server_side_encryption

    scheme = store.url.split("://", 1)[0]
    cross = config.encryption.cross_cloud
    aws = cross.aws_s3 if cross is not None else None
    azure = cross.azure_blob if cross is not None else None
    sse = server_side_encryption(
        scheme,
        spec.encryption.kms_key,
        s3_sse=aws.sse if aws is not None else None,
        s3_kms_key=aws.kms_master_key if aws is not None else None,
        azure_scope=azure.encryption_scope if azure is not None else None,
    )
    with_encryption = getattr(store, "with_encryption", None)
    if sse is None or with_encryption is None:
        need = {
            "gs": "a Cloud KMS key (encryption.at_rest.sensitive_data.kms_key or kms_key)",
            "az": "encryption.cross_cloud.azure_blob.encryption_scope",
        }.get(scheme, "a server-side encryption setting")
        raise ExportError(
            f"encryption CMEK on {store.url} needs {need}; refusing to write it unencrypted",
            table=spec.qualified_name,
            code="INVALID_ARGUMENT",
        )
    encrypted: Store = with_encryption(sse)
    return encrypted


def encrypts_client_side(spec: TableSpec, store: Store) -> bool:
    """Whether dpexport encrypts the table's files itself (CMEK on a local folder, which
    has no server to encrypt at rest, or ``client_side`` on a cloud store); ``plan`` and
    ``run`` both ask here."""
    local = isinstance(innermost(store), LocalStore)
    return spec.encryption.mode == "CMEK" and (local or spec.encryption.client_side)


def string_scalar(text: str) -> pa.Scalar:
    """``pa.scalar(text, pa.string())``, built from its buffers: any conversion of Python
    objects makes pyarrow import pandas when it is installed (~250 ms of every run)."""
    data = text.encode("utf-8")
    offsets = struct.pack("<ii", 0, len(data))
    return pa.StringArray.from_buffers(1, pa.py_buffer(offsets), pa.py_buffer(data))[0]


class Transforms:
    """The row transforms, encryption and checks of one table's export."""

    def __init__(
        self,
        spec: TableSpec,
        store: Store,
        gdpr: GdprPlan | None,
        hash_key: bytes | None,
        key_provider: KeyProvider | None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.gdpr = gdpr
        self._hash_key = hash_key
        self.key_provider = key_provider
        self._encryptor = (
            Encryptor(key_provider, spec.encryption.kms_key or "default")
            if key_provider is not None
            else None
        )
        self.version: str | None = None
        self._version_value: pa.Scalar | None = None
        #: the version value repeated for the largest batch so far (``_version_values``)
        self._version_array: pa.Array | None = None
        self.check_run: CheckRun | None = None

    @classmethod
    def for_table(cls, spec: TableSpec, local_root: Path | None, *, store: Store) -> Transforms:
        plan = gdpr_plan(spec)
        hash_key = None
        if plan is not None and any(rule == "hash_sha256" for _, rule in plan.rules):
            hash_key = load_hash_key(spec, local_root)
        provider: KeyProvider | None = None
        local = isinstance(innermost(store), LocalStore)
        if encrypts_client_side(spec, store):
            # A local folder has no server to encrypt at rest: encrypt client-side; on a
            # cloud store, client_side asks for it too, the key wrapped by the cloud's KMS.
            if local_root is not None:
                provider = LocalKeyProvider(local_root / "kms")
            elif local:
                raise UsageError(
                    f"{spec.qualified_name}: encryption CMEK on a local folder needs "
                    "--local-root DIR (the KMS key maps to a key file under DIR/kms/)"
                )
            else:
                from dpexport.security.kms import key_provider_for

                provider = key_provider_for(spec.encryption.kms_key or "")
        return cls(spec, store, plan, hash_key, provider)

    # -- columns -------------------------------------------------------------------
    @property
    def excluded(self) -> tuple[str, ...]:
        return self.gdpr.excluded if self.gdpr else ()

    @property
    def encrypts(self) -> bool:
        return self._encryptor is not None

    def set_schema_version(self, version: str) -> None:
        self.version = version
        self._version_value = string_scalar(version)
        self._version_array = None

    def apply(self, batch: pa.RecordBatch, schema: pa.Schema | None = None) -> pa.RecordBatch:
        """Anonymize, add the version column, and conform to ``schema`` when given."""
        if self.gdpr is not None:
            batch = anonymize(batch, self.gdpr, self._hash_key or b"")
        se = self.spec.schema_evolution
        value = self._version_value
        if (
            se.enabled
            and value is not None
            and not batch.schema.get_all_field_indices(se.version_column)
        ):
            column = self._version_values(value, batch.num_rows)
            batch = batch.append_column(self._version_field(se.version_column), column)
        if schema is not None and batch.schema != schema:
            batch = batch.cast(schema)
        return batch

    def _version_values(self, value: pa.Scalar, rows: int) -> pa.Array:
        """``value`` ``rows`` times: a slice of one array kept for the largest batch (one
        ``pa.repeat`` a batch copied the value into fresh memory every time: ~3 % of the
        CPU of a 5 M-row export in the spec block; a Python list, ~10 ms a 122,880 rows)."""
        held = self._version_array
        if held is None or len(held) < rows:
            held = self._version_array = pa.repeat(value, rows)
        return held.slice(0, rows)

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def _version_field(name: str) -> pa.Field:
        """The version column's field (made once: a folder's part of a batch can be a
        few dozen rows, and each is given the column)."""
        return pa.field(name, pa.string(), False)

    def output_schema(self, data_schema: pa.Schema) -> pa.Schema:
        """The written schema: what :meth:`apply` makes of ``data_schema``."""
        # from_arrays, not from_pylist: that one imports pandas (250 ms a process)
        empty = [pa.nulls(0, field.type) for field in data_schema]
        return self.apply(pa.RecordBatch.from_arrays(empty, schema=data_schema)).schema

    # -- files ---------------------------------------------------------------------
    def open_writer(self, path: Path, schema: pa.Schema) -> FormatWriter:
        spec = self.spec
        return open_writer(
            path,
            schema,
            spec.format,
            spec.compression,
            parquet=spec.parquet,
            jsonl=spec.jsonl,
            csv=spec.csv,
            encryptor=self._encryptor,
        )

    def encryption_block(self) -> dict[str, Any]:
        """The manifest's ``encryption``: how files are encrypted, never a key."""
        enc = self.spec.encryption
        if self._encryptor is not None:
            return {
                "mode": "CMEK",
                "client_side": True,
                "algorithm": "AES-256-GCM",
                "kms_key": enc.kms_key,
                "key_provider": getattr(self.key_provider, "name", "local"),
            }
        if enc.mode == "CMEK":
            info = getattr(innermost(self.store), "encryption_info", None)
            described = info() if info is not None else None
            if described:
                return dict(described)
            return {"mode": "CMEK", "client_side": False, "kms_key": enc.kms_key}
        return {"mode": "GMEK", "client_side": False}

    def read_back(self, files: Sequence[WrittenFile]) -> Iterator[pa.RecordBatch]:
        """The written rows, decoded (and decrypted), for checks of written data."""
        spec = self.spec
        for wf in files:
            table = read_file(
                wf.path,
                spec.format,
                spec.compression,
                csv=spec.csv,
                jsonl=spec.jsonl,
                decryptor=self.key_provider,
            )
            yield from table.to_batches()

    # -- checks --------------------------------------------------------------------
    def checks(
        self,
        engine: Engine,
        request: ScanRequest,
        logical_time: datetime,
        schema: pa.Schema | None = None,
    ) -> Checks:
        previous = None
        try:
            previous = json.loads(self.store.get(stats_key(self.spec)))
        except (NotFound, ValueError):
            previous = None
        run = CheckRun(CheckContext(self.spec, engine, request, logical_time, previous, schema))
        self.check_run = run
        return Checks(run, self)

    def record_stats(self, checks: Checks) -> None:
        stats = checks.run.stats()
        if stats:
            self.store.put_bytes(stats_key(self.spec), dumps(stats))


class Checks:
    """The runner's view of the named checks of one export."""

    def __init__(self, run: CheckRun, transforms: Transforms) -> None:
        self.run = run
        self._transforms = transforms
        self._engine = run.ctx.engine

    def prepare(self, request: ScanRequest) -> ScanRequest:
        prepared = self.run.prepare(request)
        self.run.before_scan()
        return prepared

    def observe(self, batch: pa.RecordBatch, group: str | None = None) -> None:
        self.run.observe(batch, group)

    def after_write(self, written: Sequence[tuple[Any, WrittenFile]]) -> None:
        files = [w for _, w in written]
        request = self.run.ctx.request

        def raw_values(column: str) -> Iterable[str]:
            raw = ScanRequest(
                request.dataset,
                request.table,
                columns=(column,),
                slice=request.slice,
                filter=request.filter,
            )
            for batch in self._engine.scan(raw):
                for value in batch.column(0).to_pylist():
                    if value is not None:
                        yield str(value)

        self.run.after_write(
            lambda: self._transforms.read_back(files), self._transforms.excluded, raw_values
        )

    def quarantine_request(self) -> ScanRequest | None:
        return self.run.quarantine_request()

    def results(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.run.results()]

    def failures(self) -> list[dict[str, Any]]:
        return [r.to_json() for r in self.run.failures()]
