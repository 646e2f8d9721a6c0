"""Where files land (spec 3, CONTRACT §4): folders, filenames, reserved prefixes.

This is the one module that knows key shapes: every object key dpexport writes or reads
back in a bucket is built here, and every key it parses back is parsed here.

- data: ``{destination}{time folder}[/{sub-folders}]/{file}``, with sidecars, manifests
  and markers (the time folders of CONTRACT §4); the data files' and sidecars' names
  follow the ``filenames`` patterns (``names``: spec 3.3, CONTRACT §4 by default);
- ``_staging/{export_id}/``: work in progress, with ``_owner.json`` and ``_commit.json``;
- ``_state/``: per-export state (watermark, de-duplication keys), schema history, the
  checks' statistics, replication state;
- ``idempotency-tokens/``: tokens and the ``_leases/`` of each table;
- ``dead-letter-queue/``: failed, poisoned and quarantined entries (spec 7.2);
- ``export-logs/{yyyy}/{MM}/{dd}/{export_id}.json``.

Names put into keys hold no ``/``; a dataset name holds no ``.`` (keys join
``{dataset}.{table}``); an export id holds no ``.`` (:func:`export_id`). The SQL that
computes folder keys inside a warehouse is the engines' (``engines.duckdb_layout``);
it asks this module for the folder formats and key column names.
"""

from __future__ import annotations

from dpexport.storage.layout.data import *  # noqa: F403
from dpexport.storage.layout.names import *  # noqa: F403
from dpexport.storage.layout.reserved import *  # noqa: F403
