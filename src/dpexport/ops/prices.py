"""The price table dpexport ships (spec 10.1, CONTRACT §12): public list prices in USD.

Written from the providers' public price pages as they stood on :data:`AS_OF` (US
regions, first volume tier, no committed-use discount), without network access at the
time of writing: check them against :data:`SOURCES` before trusting a bill to them.
``pricing:`` in the config overrides any line, by the same keys
(:mod:`dpexport.config.models.pricing`).

Units: storage in USD per GiB-month (2^30 bytes), requests in USD per 1,000, egress in
USD per GiB, BigQuery in USD per TiB (2^40 bytes) billed. ``file`` (a local folder) is
free. Keys are ``section.store.line`` with the store named by its URI scheme
(``gs``, ``s3``, ``az``, ``file``).
"""

from __future__ import annotations

from collections.abc import Mapping

#: the date the figures are believed to be from
AS_OF = "2024-06-01"

#: where each family of figures comes from
SOURCES: Mapping[str, str] = {
    "gs": "https://cloud.google.com/storage/pricing",
    "bigquery": "https://cloud.google.com/bigquery/pricing",
    "s3": "https://aws.amazon.com/s3/pricing/",
    "az": "https://azure.microsoft.com/pricing/details/storage/blobs/",
}

#: the storage class an object is priced in unless the export knows better
DEFAULT_CLASS: Mapping[str, str] = {
    "gs": "STANDARD",
    "s3": "STANDARD",
    "az": "HOT",
    "file": "STANDARD",
}

#: every line of the table; ``pricing:`` may set only these keys
PRICES: Mapping[str, float] = {
    # BigQuery on-demand analysis, per TiB billed (a dry run's bytes for ``plan``)
    "warehouse.bigquery.per_tib": 6.25,
    "warehouse.duckdb.per_tib": 0.0,
    # GCS, us-central1 (regional), per GiB-month
    "storage.gs.STANDARD": 0.020,
    "storage.gs.NEARLINE": 0.010,
    "storage.gs.COLDLINE": 0.004,
    "storage.gs.ARCHIVE": 0.0012,
    # S3, us-east-1, per GB-month (first 50 TB)
    "storage.s3.STANDARD": 0.023,
    "storage.s3.STANDARD_IA": 0.0125,
    "storage.s3.GLACIER_IR": 0.004,
    "storage.s3.GLACIER": 0.0036,
    "storage.s3.DEEP_ARCHIVE": 0.00099,
    # Azure Blob, LRS, East US, per GB-month (first 50 TB)
    "storage.az.HOT": 0.0184,
    "storage.az.COOL": 0.01,
    "storage.az.COLD": 0.0036,
    "storage.az.ARCHIVE": 0.00099,
    "storage.file.STANDARD": 0.0,
    # requests per 1,000: class A (writes, lists), class B (reads), standard class
    "operations.gs.class_a": 0.005,
    "operations.gs.class_b": 0.0004,
    "operations.s3.class_a": 0.005,
    "operations.s3.class_b": 0.0004,
    "operations.az.class_a": 0.0065,
    "operations.az.class_b": 0.0005,
    "operations.file.class_a": 0.0,
    "operations.file.class_b": 0.0,
    # egress per GiB from one cloud to another (internet egress, North America, first
    # tier); within one cloud (same region) replication is priced at 0
    "egress.gs.s3": 0.12,
    "egress.gs.az": 0.12,
    "egress.s3.gs": 0.09,
    "egress.s3.az": 0.09,
    "egress.az.gs": 0.087,
    "egress.az.s3": 0.087,
}
