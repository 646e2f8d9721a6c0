"""Spec 5.2 ``verify_destination_permissions``: a probe write and delete before an export.

The probe writes a tiny object where the commit protocol will write first
(``_staging/``), then deletes it. A denied write fails fast with
:class:`~dpexport.errors.PermissionDenied` naming the bucket and, when the store
knows it, the principal; it is a terminal error, so nothing retries it.
"""

from __future__ import annotations

import getpass
import uuid

from dpexport.errors import PermissionDenied
from dpexport.storage import layout
from dpexport.storage.base import Store


def _principal(store: Store) -> str | None:
    who = getattr(store, "principal", None)
    if who:
        return str(who)
    if getattr(store, "staging_dir", lambda: None)() is not None:  # a local folder
        try:
            return f"local user {getpass.getuser()}"
        except (KeyError, OSError):
            return None
    return None


def probe_destination(store: Store, prefix: str = "") -> None:
    """Write and delete ``_staging/.probe-<random>`` on ``store``; raise PermissionDenied
    (not retryable) if the principal may not write or delete there. ``prefix`` is the
    export's destination prefix inside the store, named in the error."""
    key = layout.probe_key(uuid.uuid4().hex[:12])
    where = store.uri(prefix) if prefix else store.url
    try:
        store.put_bytes(key, b"dpexport permission probe\n")
        store.delete(key)
    except PermissionDenied as exc:
        who = _principal(store)
        raise PermissionDenied(
            f"cannot write to destination {where} (bucket {_bucket(store)}"
            + (f", principal {who}" if who else "")
            + f"): {exc}",
            uri=store.uri(key),
        ) from exc
    except PermissionError as exc:  # the local store surfaces the OS error as is
        who = _principal(store)
        raise PermissionDenied(
            f"cannot write to destination {where} (bucket {_bucket(store)}"
            + (f", principal {who}" if who else "")
            + f"): {exc.strerror}",
            uri=store.uri(key),
        ) from exc


def _bucket(store: Store) -> str:
    return str(getattr(store, "bucket_name", None) or store.url)
