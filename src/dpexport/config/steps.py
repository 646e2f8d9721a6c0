"""Spec 5.2 ``validation_checks``: which steps of an export run.

Each phase lists its steps by name; a phase left out runs all of its steps, and a listed
phase runs only what it lists. Steps are of four kinds:

- *optional*: leaving one out turns it off. ``check_partition_freshness`` (the
  ``freshness`` gate, :mod:`dpexport.flow.preflight`), ``verify_destination_permissions``
  (the probe write/delete, :mod:`dpexport.storage.probe`), ``check_compression_ratios``
  (the band warning of :mod:`dpexport.publish.verification`), ``create_failure_marker``
  (FAILURE, :mod:`dpexport.publish.records`) and ``initiate_retry`` (without it every
  store call of an export is tried once, :mod:`dpexport.flow.runner`).
- *required*: exactly once (CONTRACT §5) rests on them, so ``check`` refuses a list
  without them (:func:`dpexport.config.value_checks.check_steps`).
- *always*: part of a required step or of a record CONTRACT §9 keeps; leaving one out is
  accepted and ``check`` says it still runs (:func:`step_notes`).
- *alerts*: ``trigger_alert`` sends the ``export_failure`` alert (:mod:`dpexport.alerts.rules`);
  leaving it out turns that alert off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dpexport.config.models import ValidationChecks

#: every step of each phase, in the spec's order
PHASES: dict[str, tuple[str, ...]] = {
    "pre_export": (
        "verify_source_table_exists",
        "check_partition_freshness",
        "estimate_export_size",
        "verify_destination_permissions",
    ),
    "during_export": (
        "monitor_job_progress",
        "track_bytes_transferred",
        "validate_schema_consistency",
    ),
    "post_export": (
        "verify_row_counts",
        "calculate_checksums",
        "validate_file_formats",
        "check_compression_ratios",
        "create_success_marker",
    ),
    "failure_handling": (
        "create_failure_marker",
        "log_error_details",
        "trigger_alert",
        "initiate_retry",
    ),
}
#: step -> why an export cannot run without it
REQUIRED: dict[str, str] = {
    "verify_source_table_exists": "the export reads the source's schema before anything else",
    "validate_schema_consistency": "the manifest's schema version and hash come from it",
    "verify_row_counts": "an export publishes only when every row of its slice was written",
    "calculate_checksums": "manifests and `verify` hold every file to its sha256",
    "validate_file_formats": "each file is read back before it is published",
    "create_success_marker": "readers and reruns know a folder is complete by its SUCCESS",
}
#: step -> why leaving it out changes nothing
ALWAYS: dict[str, str] = {
    "estimate_export_size": "the slice's row count is what verify_row_counts compares with",
    "monitor_job_progress": "progress is reported as the export runs",
    "track_bytes_transferred": "the export log and manifest count the bytes written",
    "log_error_details": "the export log and the DLQ entry keep every failure's error "
    "(CONTRACT §9)",
}
ALL_STEPS: dict[str, str] = {step: phase for phase, steps in PHASES.items() for step in steps}


@dataclass(frozen=True)
class Steps:
    """The spec 5.2 steps that run (all of them unless ``validation_checks`` says less)."""

    enabled: frozenset[str] = frozenset(ALL_STEPS)

    def runs(self, step: str) -> bool:
        return step in self.enabled

    @property
    def freshness(self) -> bool:
        return self.runs("check_partition_freshness")

    @property
    def destination_probe(self) -> bool:
        return self.runs("verify_destination_permissions")

    @property
    def compression_ratios(self) -> bool:
        return self.runs("check_compression_ratios")

    @property
    def failure_marker(self) -> bool:
        return self.runs("create_failure_marker")

    @property
    def retry(self) -> bool:
        return self.runs("initiate_retry")


def resolve_steps(block: ValidationChecks) -> Steps:
    """The steps ``block`` runs: each listed phase's known names, every step of a phase
    left out (unknown names are ``check``'s to refuse)."""
    enabled: set[str] = set()
    for phase, steps in PHASES.items():
        listed = getattr(block, phase)
        enabled.update(steps if listed is None else (s for s in listed if s in steps))
    return Steps(frozenset(enabled))


def step_notes(block: ValidationChecks) -> list[str]:
    """What ``check`` says on stderr about ``block``: steps left out that run anyway
    (steps not enforced yet are :mod:`dpexport.config.coverage`'s notes)."""
    notes: list[str] = []
    for phase, steps in PHASES.items():
        listed = getattr(block, phase)
        if listed is None:
            continue
        for step in steps:
            if step in ALWAYS and step not in listed:
                notes.append(
                    f"validation_checks.{phase}: {step} is left out but always runs: {ALWAYS[step]}"
                )
    return notes
