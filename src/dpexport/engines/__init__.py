"""Warehouse engines behind one interface; each imported only when used."""

from __future__ import annotations

from pathlib import Path

from dpexport.config.spec import WarehouseSpec
from dpexport.engines.base import Engine, ScanRequest, Slice
from dpexport.errors import ConfigError, ConfigIssue, UsageError
from dpexport.security.identity import Identity, gcp_credentials

__all__ = ["Engine", "ScanRequest", "Slice", "open_engine"]


def open_engine(
    spec: WarehouseSpec, *, base_dir: Path | None = None, identity: Identity | None = None
) -> Engine:
    """The engine the config names; relative DuckDB paths resolve against ``base_dir``;
    BigQuery impersonates ``identity``'s service account when it has one (CONTRACT §11)."""
    if spec.engine == "duckdb":
        from dpexport.engines.duckdb import DuckDBEngine

        path = Path(spec.path or "warehouse.duckdb")
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        _check_duckdb_file(path)
        return DuckDBEngine(path, memory_limit=spec.memory_limit, threads=spec.threads)
    if spec.engine == "bigquery":
        return _open_bigquery(spec, identity)
    raise UsageError(
        f"warehouse.engine: {spec.engine!r} is not available in this build yet; use 'duckdb'"
    )


def _check_duckdb_file(path: Path) -> None:
    """A missing file is a usage error (``demo`` or a load creates it); a folder, or a
    name the file system refuses, is a config error (exit 2), not a failed export."""
    shown = repr(str(path)) if len(str(path)) <= 200 else repr(str(path)[:197] + "...")
    try:
        exists, folder = path.exists(), path.is_dir()
    except OSError as exc:  # a name too long for the file system
        what = f"cannot name a file: {exc.strerror}"
        raise ConfigError([ConfigIssue("warehouse.path", what, value=shown)]) from None
    if not exists:
        raise UsageError(f"warehouse.path: DuckDB file {shown} does not exist")
    if folder:
        what = "names a folder, not a DuckDB database file"
        raise ConfigError([ConfigIssue("warehouse.path", what, value=shown)])


def _open_bigquery(spec: WarehouseSpec, identity: Identity | None = None) -> Engine:
    """The BigQuery engine; ``credentials_env`` names a variable holding a key file's path."""
    import os

    try:
        from dpexport.engines.bigquery import BigQueryEngine
    except ImportError as exc:  # the extra is not installed
        raise UsageError(
            "warehouse.engine: bigquery needs the BigQuery clients: "
            "pip install 'dpexport[bigquery]'"
        ) from exc
    if not spec.project:
        raise UsageError("warehouse.project: the BigQuery engine needs a project")
    credentials = None
    if spec.credentials_env:
        key_file = os.environ.get(spec.credentials_env)
        if not key_file:
            raise UsageError(
                f"warehouse.credentials_env: environment variable {spec.credentials_env} is not set"
            )
        from google.oauth2 import service_account

        credentials = service_account.Credentials.from_service_account_file(
            key_file, scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
    endpoint = spec.api_endpoint or os.environ.get("BIGQUERY_EMULATOR_HOST") or ""
    if identity is not None and identity.gcp_service_account and "http://" not in endpoint:
        credentials, _ = gcp_credentials(identity, source=credentials)  # None: ADC
    return BigQueryEngine(
        spec.project,
        spec.location,
        api_endpoint=spec.api_endpoint,
        storage_api_endpoint=spec.storage_api_endpoint,
        credentials=credentials,
    )
