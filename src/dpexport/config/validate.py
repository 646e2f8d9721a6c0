"""Checks on the raw document that need a suggestion or span keys.

They run on the normalised data (wrapper keys removed) whether or not pydantic
accepted the rest, so one pass reports every problem: formats, codecs per format,
modes, cron expressions, table names, destinations, partition layouts.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from dpexport.config import schedules, units
from dpexport.config.issues import Issues, closest
from dpexport.config.loader import Path
from dpexport.config.models.formats import check_format_values
from dpexport.config.secrets import check_secrets
from dpexport.config.spec import CODECS_BY_FORMAT
from dpexport.config.value_checks import check_values
from dpexport.storage.uri import CLOUD_SCHEMES, uri_problem

FORMATS = tuple(CODECS_BY_FORMAT)
ALL_CODECS = ("SNAPPY", "ZSTD", "GZIP", "BROTLI", "NONE")
#: OVERWRITE and FULL_REFRESH are one mode (CONTRACT §3).
MODES = ("APPEND", "FULL_REFRESH", "OVERWRITE", "INCREMENTAL")
ENCRYPTION_MODES = ("CMEK", "GMEK", "NONE")
PARQUET_ENCODINGS = ("PLAIN_DICTIONARY", "RLE_DICTIONARY", "DICTIONARY", "PLAIN")
PARQUET_VERSIONS = ("1.0", "2.4", "2.6")
COLUMN_ENCODINGS = (
    "PLAIN",
    "DELTA_BINARY_PACKED",
    "DELTA_LENGTH_BYTE_ARRAY",
    "DELTA_BYTE_ARRAY",
    "BYTE_STREAM_SPLIT",
    "RLE",
)
ANONYMIZATION_RULES = ("hash_sha256", "mask_except_last_4", "truncate_last_octet")
ERROR_CODES = (
    "RATE_LIMIT_EXCEEDED",
    "QUOTA_EXCEEDED",
    "TIMEOUT",
    "INTERNAL_ERROR",
    "SERVICE_UNAVAILABLE",
    "PERMISSION_DENIED",
    "INVALID_ARGUMENT",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "FAILED_PRECONDITION",
)
STORAGE_CLASSES = ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
TIME_TOKENS = ("{yyyy}", "{MM}", "{dd}", "{HH}")

_NAME_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_PLACEHOLDER = re.compile(r"^\{(\w+)\}$")
_TIER_KEY = re.compile(r"^\d+_days?$")
_TRANSITION = re.compile(r"^(?:transition\s+to\s+|setstorageclass:)(\w+)$", re.IGNORECASE)
_WRAPPERS = {"formats": "format_config", "exports": "export_config"}


def normalize(data: object, issues: Issues) -> object:
    """Copy ``data`` with spec wrapper keys removed (CONTRACT §8), noting each rewrite."""
    data = copy.deepcopy(data)
    if not isinstance(data, dict):
        return data
    formats = data.get("formats")
    if isinstance(formats, dict):
        for name, block in formats.items():
            if isinstance(block, dict) and list(block) == ["format_config"]:
                formats[name] = block["format_config"]
                issues.rewrites[("formats", name)] = ("formats", name, "format_config")
    exports = data.get("exports")
    if isinstance(exports, list):
        for index, item in enumerate(exports):
            if isinstance(item, dict) and list(item) == ["export_config"]:
                exports[index] = item["export_config"]
                issues.rewrites[("exports", index)] = ("exports", index, "export_config")
    return data


def check_document(data: object, issues: Issues) -> None:
    """Run every raw-data check; report through ``issues``."""
    for dup in issues.doc.duplicates:
        issues.add(dup, "duplicate key; the later value would silently win")
    if not isinstance(data, dict):
        if data is not None:
            issues.add((), "the config must be a mapping of top-level keys", value=data)
        return
    check_secrets(data, issues)
    env = data.get("environment")
    if isinstance(env, str) and not _SEGMENT.match(env):
        issues.add(("environment",), "not a safe folder name", value=env, expected="e.g. prod")
    for name, uri in _items(data.get("buckets")):
        check_location(("buckets", name), uri, issues)
    _check_formats(data.get("formats"), issues)
    check_format_values(data, issues)  # delimiters, encodings, sizes, levels (issue 17)
    for codec, info in _items(data.get("compression_matrix")):
        issues.choice(("compression_matrix", codec), codec, ALL_CODECS, "codec")
        ratio = info.get("compression_ratio") if isinstance(info, dict) else None
        if ratio is not None:
            _parse(("compression_matrix", codec, "compression_ratio"), ratio, issues)
    _check_sections(data, issues)
    for index, item in enumerate(_list(data.get("exports"))):
        if isinstance(item, dict):
            _check_export(("exports", index), item, issues)
    for index, rep in enumerate(_list(data.get("replication"))):
        if isinstance(rep, dict) and isinstance(rep.get("target"), str):
            check_location(("replication", index, "target"), rep["target"], issues)
        if isinstance(rep, dict) and isinstance(rep.get("schedule"), str):
            check_schedule(("replication", index, "schedule"), rep["schedule"], issues)
    _check_operations(data, issues)
    schedules.check_off_peak(issues, data.get("optimization_strategies"))
    check_values(data, issues)  # retry, lease, shares, dedup, crons, checks (issue 17)


def check_table_name(path: Path, name: object, issues: Issues) -> bool:
    """``table`` or ``dataset.table`` (or ``project.dataset.table``), each part a safe name."""
    if not isinstance(name, str):
        return False
    parts = name.split(".")
    if len(parts) > 3 or not all(_NAME_PART.match(p) for p in parts):
        issues.add(
            path,
            "not a valid table name (it would escape its folder or is empty)",
            value=name,
            expected="table or dataset.table of letters, digits, _ and - (no '..', '/', '\\')",
        )
        return False
    return True


def check_location(path: Path, uri: object, issues: Issues) -> bool:
    """A bucket URI (``gs://``, ``s3://``, ``az://``) or a local path, parsed as strictly
    as :func:`dpexport.storage.uri.uri_problem` parses it (no ``gs:/b``, no empty or dot
    segments, no control characters), and no ``..`` in a local path either. Reports and
    returns False when refused."""
    if not isinstance(uri, str):
        return False
    if not uri.strip():
        issues.add(path, "empty location", expected="a URI or a local path")
        return False
    scheme, sep, rest = uri.partition("://")
    problem = uri_problem(uri)
    if problem is not None:
        issues.add(
            path,
            problem.message,
            value=uri,
            expected=problem.expected,
            suggestion=problem.suggestion or (_scheme_hint(scheme, rest) if sep else None),
        )
        return False
    if ".." in (rest if sep else uri).replace("\\", "/").split("/"):  # a local path
        issues.add(path, "a location must not contain '..'", value=uri)
        return False
    return True


def _scheme_hint(scheme: str, rest: str) -> str | None:
    if scheme in (*CLOUD_SCHEMES, "file"):
        return None  # the scheme is right; something else is wrong
    best = closest(scheme, CLOUD_SCHEMES)
    return f"{best}://{rest}" if best else None


def check_schedule(path: Path, schedule: object, issues: Issues) -> None:
    """A schedule as the scheduler reads it (:func:`dpexport.config.schedules.check_schedule`)."""
    schedules.check_schedule(issues, path, schedule)


def _items(block: object) -> list[tuple[str, Any]]:
    return list(block.items()) if isinstance(block, dict) else []


def _list(block: object) -> list[Any]:
    """A list, or nothing to walk (a wrong type is the models' to report)."""
    return block if isinstance(block, list) else []


def _parse(path: Path, value: object, issues: Issues) -> None:
    try:
        units.parse_percent_range(value)
    except ValueError:
        issues.add(path, "not a percentage range", value=value, expected=units.PERCENT_FORMS)


def _check_formats(formats: object, issues: Issues) -> None:
    for name, block in _items(formats):
        if name not in FORMATS or not isinstance(block, dict):
            continue  # the model reports unknown format keys with a suggestion
        codec = block.get("compression")
        if isinstance(codec, str):
            issues.choice(("formats", name, "compression"), codec, CODECS_BY_FORMAT[name], "codec")
        if name == "PARQUET":
            if isinstance(block.get("encoding"), str):
                issues.choice(
                    ("formats", name, "encoding"), block["encoding"], PARQUET_ENCODINGS, "encoding"
                )
            version = block.get("version")
            if isinstance(version, str | float) and str(version) not in PARQUET_VERSIONS:
                issues.add(
                    ("formats", name, "version"),
                    "unsupported Parquet format version",
                    value=version,
                    expected="one of " + ", ".join(PARQUET_VERSIONS),
                )


def _check_sections(data: dict[str, Any], issues: Issues) -> None:
    for section in ("append_only", "full_refresh", "incremental", "high_volume"):
        for table, entry in _items(data.get(section)):
            check_table_name((section, table), table, issues)
            if not isinstance(entry, dict):
                continue
            if isinstance(entry.get("export_mode"), str):
                issues.choice((section, table, "export_mode"), entry["export_mode"], MODES, "mode")
            if section == "full_refresh":
                schedules.check_block(issues, (section, table), entry, "frequency")
            if section == "high_volume" and isinstance(entry.get("path_pattern"), str):
                check_path_pattern((section, table, "path_pattern"), entry, issues)


def check_path_pattern(path: Path, entry: dict[str, Any], issues: Issues) -> None:
    """Spec 3.2 ``path_pattern``: ``{entity}/{yyyy}/{MM}/{dd}[/{HH}]/{sub}/...``, a segment
    plain or hive style (``dt={yyyy}-{MM}-{dd}``, ``shard={shard_id}``):
    :mod:`dpexport.config.path_pattern` says what holds."""
    from dpexport.config.path_pattern import EXPECTED, problems

    exprs = [e for e in (entry.get("secondary_partition"), entry.get("tertiary_partition")) if e]
    for problem in problems(entry["path_pattern"], len(exprs)):
        issues.add(path, problem, value=entry["path_pattern"], expected=EXPECTED)


def _check_item_pattern(path: Path, pattern: str, issues: Issues) -> None:
    """An ``exports`` item's ``partitioning.path_pattern``; whether each sub-folder has
    an expression (its own or its ``high_volume`` entry's) is resolved later."""
    from dpexport.config.path_pattern import EXPECTED, problems

    for problem in problems(pattern, expressions=None):
        issues.add(path, problem, value=pattern, expected=EXPECTED)


def _check_export(path: Path, item: dict[str, Any], issues: Issues) -> None:
    source = item.get("source")
    if isinstance(source, str):
        check_table_name((*path, "source"), source, issues)
    if "destination" in item:
        check_location((*path, "destination"), item["destination"], issues)
    fmt = item.get("format", "PARQUET")
    fmt_ok = isinstance(fmt, str) and issues.choice((*path, "format"), fmt, FORMATS, "format")
    codec = item.get("compression")
    if isinstance(codec, str) and fmt_ok:
        allowed = CODECS_BY_FORMAT[str(fmt).upper()]
        if codec.upper() not in allowed:
            issues.add(
                (*path, "compression"),
                f"codec not allowed for {str(fmt).upper()}",
                value=codec,
                expected="one of " + ", ".join(allowed),
                suggestion=closest(codec, allowed),
            )
    for key, choices, what in (
        ("mode", MODES, "mode"),
        ("encryption", ENCRYPTION_MODES, "encryption"),
    ):
        if isinstance(item.get(key), str):
            issues.choice((*path, key), item[key], choices, what)
    schedules.check_block(issues, path, item, "schedule")
    part = item.get("partitioning")
    if isinstance(part, dict):
        has_field, has_primary = part.get("field") is not None, part.get("primary") is not None
        if has_field == has_primary:
            issues.add(
                (*path, "partitioning"),
                "partitioning needs exactly one of 'field' or 'primary'",
                expected="{field: COLUMN, granularity: daily} or {primary: ..., secondary: ...}",
            )
        if isinstance(part.get("path_pattern"), str):
            _check_item_pattern(
                (*path, "partitioning", "path_pattern"), part["path_pattern"], issues
            )
    opt = item.get("optimization")
    if isinstance(opt, dict):
        if fmt_ok and str(fmt).upper() != "PARQUET":
            issues.add((*path, "optimization"), "optimization applies to PARQUET exports only")
        enc = opt.get("column_encoding")
        encodings = [("*", enc)] if isinstance(enc, str) else _items(enc)
        for column, value in encodings:
            where = (*path, "optimization", "column_encoding")
            if isinstance(value, str):
                issues.choice(
                    where if column == "*" else (*where, column),
                    value,
                    COLUMN_ENCODINGS,
                    "encoding",
                )
    gdpr = item.get("gdpr_compliance")
    if isinstance(gdpr, dict):
        for index, rule in enumerate(_list(gdpr.get("anonymization"))):
            where = (*path, "gdpr_compliance", "anonymization", index)
            if not (isinstance(rule, dict) and len(rule) == 1):
                issues.add(where, "each item is one {column: rule}", value=rule)
                continue
            ((column, name),) = rule.items()
            if isinstance(name, str) and name not in ANONYMIZATION_RULES:
                issues.add(
                    (*where, column),
                    "unknown anonymization rule",
                    value=name,
                    expected="one of " + ", ".join(ANONYMIZATION_RULES),
                    suggestion=closest(name, ANONYMIZATION_RULES),
                )
    for index, check in enumerate(_list(item.get("validation"))):
        if isinstance(check, dict) and len(check) != 1:
            issues.add(
                (*path, "validation", index),
                "a check is a name or {name: {param: value}}",
                value=check,
            )


def _check_operations(data: dict[str, Any], issues: Issues) -> None:
    retry = data.get("retry_configuration")
    for key in ("retry_conditions", "non_retryable"):
        values = retry.get(key) if isinstance(retry, dict) else None
        for index, code in enumerate(values if isinstance(values, list) else []):
            if isinstance(code, str):
                issues.choice(("retry_configuration", key, index), code, ERROR_CODES, "error code")
    dlq = data.get("dlq_configuration")
    if isinstance(dlq, dict):
        check_location(
            ("dlq_configuration", "storage_location"), dlq.get("storage_location"), issues
        )
    idem = data.get("idempotency_design")
    storage = idem.get("storage") if isinstance(idem, dict) else None
    if isinstance(storage, dict):
        check_location(
            ("idempotency_design", "storage", "location"), storage.get("location"), issues
        )
    for key, tier in _items(data.get("lifecycle_policies")):
        if key == "auto_delete":
            continue
        if not _TIER_KEY.match(key):
            issues.add(("lifecycle_policies", key), "unknown key", expected="N_days or auto_delete")
        elif isinstance(tier, dict) and isinstance(tier.get("action"), str):
            _check_transition(("lifecycle_policies", key, "action"), tier["action"], issues)
    for bucket, policy in _items(data.get("bucket_policies")):
        rules = policy.get("lifecycle_rules") if isinstance(policy, dict) else None
        for index, rule in enumerate(rules if isinstance(rules, list) else []):
            action = rule.get("action") if isinstance(rule, dict) else None
            if isinstance(action, str) and action.strip().lower() != "delete":
                path = ("bucket_policies", bucket, "lifecycle_rules", index, "action")
                _check_transition(path, action, issues)


def _check_transition(path: Path, action: str, issues: Issues) -> None:
    match = _TRANSITION.match(action.strip())
    if not match:
        issues.add(
            path,
            "unknown lifecycle action",
            value=action,
            expected="'Transition to CLASS', 'SetStorageClass:CLASS' or 'Delete'",
        )
    else:
        issues.choice(path, match.group(1), STORAGE_CLASSES, "storage class")
