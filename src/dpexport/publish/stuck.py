"""What a run says about a commit journal it can neither finish nor roll back
(``commit.recover``): the journal's key, why, and the way out."""

from __future__ import annotations

from dpexport.errors import DpexportError, NotFound
from dpexport.storage import layout
from dpexport.storage.base import Store


class StagedFileGone(NotFound):
    """A move of the journal whose staged file and final key are both missing."""


_SET_ASIDE = (
    "move the journal aside, out of _staging/: the next run rolls back what is left of its staging"
)


def damaged_journal_message(store: Store, export_id: str, damage: str) -> str:
    """What a run says about a journal it can neither finish nor roll back."""
    key = store.uri(layout.staging_prefix(export_id) + layout.STAGING_JOURNAL)
    return (
        f"the commit journal {key} is {damage}; export {export_id} passed its commit point, "
        "so it is neither finished nor rolled back. Check what it published (the manifests "
        f"whose export_id is {export_id}; `dpexport verify` on their destination), then "
        + _SET_ASIDE
    )


def unfinished_message(store: Store, export_id: str, exc: Exception) -> str:
    """The error of a journal whose steps fail, naming the journal (and for a staged
    file that is gone, the way out)."""
    error = str(exc) if isinstance(exc, DpexportError) else f"{type(exc).__name__}: {exc}"
    key = store.uri(layout.staging_prefix(export_id) + layout.STAGING_JOURNAL)
    if "name too long" in error.lower():  # written by a version that named folders so
        return (
            f"{error}: the commit journal {key} names a key the store cannot hold (a "
            "partition value's folder written before names were cut at 255 bytes); "
            "nothing under that name was published, so " + _SET_ASIDE + ", and the "
            "export is made again"
        )
    if not isinstance(exc, StagedFileGone):
        return f"{error} (commit journal {key})"
    return (
        f"{error}; the commit journal {key} cannot be finished without it. Restore the "
        "file, or check what the export published (`dpexport verify` on its destination) "
        "and " + _SET_ASIDE
    )
