"""dpexport: export warehouse tables to object storage, exactly once.

The public API mirrors the command line, so Airflow tasks and tests call the same code::

    import dpexport
    config = dpexport.load_config("dpexport.yaml")
    results = dpexport.run(config, tables=["users"], local_root="out")
    report = dpexport.verify("gs://diagnosticpro-exports/prod/", local_root="out")

Importing this package imports no cloud SDK and no engine: each loads when used.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from dpexport.errors import ConfigError, DpexportError, ExportError, VerificationError

if TYPE_CHECKING:
    from dpexport.config.spec import ResolvedConfig
    from dpexport.runner import ExportResult
    from dpexport.verification import Report

__all__ = [
    "TRIGGERS",
    "ConfigError",
    "DpexportError",
    "ExportError",
    "VerificationError",
    "load_config",
    "run",
    "verify",
]

__version__ = "0.1.0"

#: What may start an export (the manifest's ``export_trigger``): ``run --trigger``, a
#: scheduler's cron or interval, the Python API, a streaming caller
TRIGGERS = ("manual", "cron", "api", "stream")


def load_config(path: str | os.PathLike[str]) -> ResolvedConfig:
    """Parse and validate a config file; raises ConfigError listing every problem."""
    from dpexport.config import load_config as _load

    return _load(path)


def run(
    config: ResolvedConfig,
    *,
    tables: Sequence[str] = (),
    at: datetime | None = None,
    trigger: str = "api",
    local_root: str | os.PathLike[str] | None = None,
) -> list[ExportResult]:
    """Run the exports of ``config`` (all tables, or ``tables``) at logical time ``at``."""
    from dpexport.engines import open_engine
    from dpexport.runner import RunOptions, run_exports

    base = Path(config.source_path).parent if config.source_path else None
    engine = open_engine(config.warehouse, base_dir=base)
    try:
        options = RunOptions(
            tables=tables,
            at=at,
            trigger=trigger,
            local_root=Path(local_root) if local_root else None,
        )
        return run_exports(config, engine, options)
    finally:
        engine.close()


def verify(uri: str, *, local_root: str | os.PathLike[str] | None = None) -> Report:
    """Re-check a published export (a manifest, or every manifest under a folder)."""
    from dpexport.verification import verify_uri

    return verify_uri(uri, local_root=Path(local_root) if local_root else None)
