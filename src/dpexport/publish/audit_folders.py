"""``verify``'s checks of committed folders as wholes (CONTRACT §5): their markers, and
data files that no manifest lists.

A committed folder is one holding a manifest or a SUCCESS marker. Its SUCCESS must be
there when its manifests are (committed data missing its marker is not committed), be
readable, name only manifests that exist, and name every manifest of the folder. A data
file that no manifest lists is not part of the export: under a committed folder it is a
stray (or its manifest was deleted); elsewhere, a data file with its sidecar beside it
was published by dpexport and has lost both its manifest and its SUCCESS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dpexport.errors import NotFound
from dpexport.publish.audit_docs import Manifest, parse_success
from dpexport.storage import layout
from dpexport.storage.base import ObjectInfo, Store

Add = Callable[[str, str], None]


def check_folders(
    store: Store, objects: dict[str, ObjectInfo], manifests: dict[str, Manifest], add: Add
) -> None:
    """Check the committed folders among ``objects`` (one listing of the store), whose
    ``manifests`` are parsed; ``add(key, problem)`` reports each problem."""
    by_folder: dict[str, list[Manifest]] = {}
    for manifest in manifests.values():
        by_folder.setdefault(manifest.folder, []).append(manifest)
    marked = {layout.key_folder(k) for k in objects if layout.key_name(k) == layout.SUCCESS}
    committed = set(by_folder) | marked
    for folder in sorted(committed):
        _markers(store, folder, by_folder.get(folder, []), objects, add)
    _strays(objects, committed, by_folder, add)


def _markers(
    store: Store,
    folder: str,
    manifests: list[Manifest],
    objects: dict[str, ObjectInfo],
    add: Add,
) -> None:
    success = folder + layout.SUCCESS
    if success not in objects:
        if manifests:
            failure = " (a FAILURE marker is there)" if folder + layout.FAILURE in objects else ""
            add(
                success,
                f"missing: the folder holds {len(manifests)} manifest(s) but no SUCCESS "
                f"marker{failure}, so its data is not committed; the marker was deleted, or "
                "a commit was interrupted (the table's next run finishes or rolls it back)",
            )
        return
    try:
        raw = store.get(success)
    except NotFound:
        raw = b""
    marker = parse_success(raw)
    if marker.problem is not None:
        add(success, marker.problem)
        return
    named = list(marker.manifests or [])
    if marker.newest is not None and marker.newest not in named:
        named.append(marker.newest)
    for name in named:
        if folder + name not in objects:
            add(success, f"names missing manifest {name}")
    if marker.manifests is None:
        return  # an older marker names only the newest manifest
    for manifest in sorted(manifests, key=lambda m: m.key):
        if layout.key_name(manifest.key) not in marker.manifests:
            add(
                manifest.key,
                "not named by SUCCESS: not part of the committed export (left by an "
                "interrupted commit, or SUCCESS was rewritten)",
            )


def _ancestors(key: str) -> Iterable[str]:
    """The folders holding ``key``, nearest first (``a/b/c`` -> ``a/b/``, ``a/``, ``''``)."""
    parts = key.split("/")[:-1]
    for i in range(len(parts), -1, -1):
        yield "".join(p + "/" for p in parts[:i])


def _strays(
    objects: dict[str, ObjectInfo],
    committed: set[str],
    by_folder: dict[str, list[Manifest]],
    add: Add,
) -> None:
    listed: set[str] = set()
    for manifests in by_folder.values():
        for m in manifests:
            for name in m.listed:
                listed.update((m.folder + name, m.names.sidecar_of(m.folder + name)))
    every = {m.names for ms in by_folder.values() for m in ms} | {layout.DEFAULT_NAMES}
    for key in objects:
        if key in listed:
            continue
        name = layout.key_name(key)
        home = next((f for f in _ancestors(key) if f in committed), None)
        if home is not None:
            patterns = {m.names for m in by_folder.get(home, [])} or {layout.DEFAULT_NAMES}
            if any(n.is_data_file(name) for n in patterns):
                add(key, "data file not listed in any manifest")
        elif any(n.is_data_file(name) and n.sidecar_of(key) in objects for n in every):
            add(
                key,
                "data file not listed in any manifest, in a folder with no manifest and "
                "no SUCCESS marker (its sidecar says dpexport published it)",
            )
