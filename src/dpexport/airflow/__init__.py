"""dpexport in Airflow (3.x): an operator exporting one table at a DAG run's logical time,
and DAGs built from a config's schedules. A DAG file::

    from dpexport.airflow import dags_from_config

    globals().update(dags_from_config("/etc/dpexport/dpexport.yaml"))

Airflow is an optional integration: ``import dpexport`` never imports it, and this
package imports it only when the operator or the DAGs are first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dpexport.airflow.dags import dags_from_config
    from dpexport.airflow.operator import DpexportOperator

__all__ = ["DpexportOperator", "dags_from_config"]


def __getattr__(name: str) -> Any:
    if name == "DpexportOperator":
        from dpexport.airflow.operator import DpexportOperator

        return DpexportOperator
    if name == "dags_from_config":
        from dpexport.airflow.dags import dags_from_config

        return dags_from_config
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
