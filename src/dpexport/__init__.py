"""dpexport: export warehouse tables to object storage, exactly once.

The public API mirrors the command line, one function per command, with the same
checks, so Airflow tasks and tests call the same code::

    import dpexport
    results = dpexport.run("dpexport.yaml", tables="users", local_root="out")
    report = dpexport.verify("gs://diagnosticpro-exports/prod/", local_root="out")

A config is a file path, a loaded config (``dpexport.load_config``) or a
``dpexport.Workspace``. ``run`` raises ``ExportFailed`` (carrying every result) when an
export fails, unless ``raise_on_failure=False``; a table the config lacks raises
``UnknownTable``, naming the tables it has.

Importing this package imports nothing else: each name loads its module when first used
(so the command line can load itself as it chooses, see ``__main__``), and no cloud SDK
or engine loads before it is used.

The packages follow an export's flow: ``config`` (YAML to typed, checked TableSpecs) ->
``planning`` (slice, watermark, write path) -> ``engines`` (DuckDB, BigQuery: reads,
statistics, native writers) -> ``transforms`` and ``checks`` -> ``formats`` (writers,
routing rows to folders) -> ``publish`` (verification, manifests, the commit protocol,
tokens, state) -> ``storage`` (local, GCS, S3, Azure; ``layout`` names every key).
``flow`` runs those steps for one export (``flow.export``) and many (``flow.runner``);
``api``, ``workspace`` and ``cli`` are the front doors; ``ops``, ``reliability`` and
``security`` serve them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dpexport.api import (
        CheckReport,
        DemoRun,
        check,
        compact,
        decrypt,
        demo,
        dlq_list,
        dlq_purge,
        dlq_retry,
        files,
        init,
        load_config,
        logs_query,
        plan,
        reconcile,
        run,
        status,
        verify,
    )
    from dpexport.api_storage import (
        alerts_list,
        alerts_test,
        iam_render,
        lifecycle_apply,
        lifecycle_archive,
        lifecycle_sweep,
        replicate,
    )
    from dpexport.errors import (
        ConfigError,
        DpexportError,
        ExportError,
        ExportFailed,
        UnknownTable,
        UsageError,
        VerificationError,
    )
    from dpexport.service import dashboard, schedule
    from dpexport.workspace import Workspace

__all__ = [
    "TRIGGERS",
    "CheckReport",
    "ConfigError",
    "DemoRun",
    "DpexportError",
    "ExportError",
    "ExportFailed",
    "UnknownTable",
    "UsageError",
    "VerificationError",
    "Workspace",
    "alerts_list",
    "alerts_test",
    "check",
    "compact",
    "dashboard",
    "decrypt",
    "demo",
    "dlq_list",
    "dlq_purge",
    "dlq_retry",
    "files",
    "iam_render",
    "init",
    "lifecycle_apply",
    "lifecycle_archive",
    "lifecycle_sweep",
    "load_config",
    "logs_query",
    "plan",
    "reconcile",
    "replicate",
    "run",
    "schedule",
    "status",
    "verify",
]

__version__ = "0.1.0"

#: What may start an export (the manifest's ``export_trigger``): ``run --trigger``, a
#: scheduler's cron or interval, the Python API, a streaming caller
TRIGGERS = ("manual", "cron", "api", "stream")


class _Package(types.ModuleType):
    """``demo`` names both a function here and a submodule;
    importing a submodule sets it on its package, which would replace the function.
    The function stays; ``from dpexport.demo import ...`` finds the submodule in
    ``sys.modules`` as ever."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and name in __all__:
            return
        super().__setattr__(name, value)


#: the module each public name lives in
_HOMES = {
    **dict.fromkeys(
        ("CheckReport", "DemoRun", "check", "compact", "decrypt", "demo", "dlq_list",
         "dlq_purge", "dlq_retry", "files", "init", "load_config", "logs_query", "plan",
         "reconcile", "run", "status", "verify"),
        "dpexport.api",
    ),
    **dict.fromkeys(
        ("alerts_list", "alerts_test", "iam_render", "lifecycle_apply", "lifecycle_archive",
         "lifecycle_sweep", "replicate"),
        "dpexport.api_storage",
    ),
    **dict.fromkeys(
        ("ConfigError", "DpexportError", "ExportError", "ExportFailed", "UnknownTable",
         "UsageError", "VerificationError"),
        "dpexport.errors",
    ),
    "dashboard": "dpexport.service",
    "schedule": "dpexport.service",
    "Workspace": "dpexport.workspace",
}  # fmt: skip


def __getattr__(name: str) -> object:
    """A public name, from its module, imported on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    setattr(sys.modules[__name__], name, value)  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


sys.modules[__name__].__class__ = _Package
