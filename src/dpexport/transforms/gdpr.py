"""GDPR anonymization (spec 8.5, CONTRACT §8): keyed hashing, masking, IP truncation.

A table's ``gdpr_compliance`` block names, per column, one rule:

- ``hash_sha256``: HMAC-SHA256 of the UTF-8 value, as 64 lowercase hex digits. Keyed,
  so a dictionary of candidate values cannot reverse it; deterministic, so equal inputs
  still join. The key comes from :func:`load_hash_key`; there is no unkeyed fallback.
- ``mask_except_last_4``: every character but the last 4 becomes ``*``; the length is
  kept. A value of 4 characters or fewer is masked entirely, since keeping its "last 4"
  would keep all of it.
- ``truncate_last_octet``: IPv4 ``a.b.c.d`` becomes ``a.b.c.0``; IPv6 keeps its /64
  (the first four hextets, the rest zero, canonical compressed form); an IPv4-mapped
  IPv6 address is truncated as IPv4 and stays mapped. A value that is not an IP address
  becomes NULL: passing it through could leak whatever it holds.

NULL stays NULL under every rule. Results are strings (``large_string`` when the input
was). ``excluded_fields`` never reach this module: the caller leaves them out of the
SELECT (``ScanRequest.exclude``); :func:`anonymize` refuses a batch that still has one.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from dpexport.config.spec import TableSpec
from dpexport.errors import ConfigError, ConfigIssue, InvalidArgument

#: The anonymization rules, by the name the config uses.
RULES: tuple[str, ...] = ("hash_sha256", "mask_except_last_4", "truncate_last_octet")

#: Environment variable holding the HMAC key when ``hash_key_env`` is not set.
DEFAULT_HASH_KEY_ENV = "DPEXPORT_HASH_KEY"

#: Key file under ``--local-root`` (relative to the root) when the variable is unset.
LOCAL_KEY_FILE = Path("kms") / "gdpr-hash-key"

_BLOCK_KEYS = ("anonymization", "excluded_fields", "hash_key_env", "consent_column")


@dataclass(frozen=True)
class GdprPlan:
    """What to do to one table's rows: columns never exported, and (column, rule) pairs."""

    excluded: tuple[str, ...]
    rules: tuple[tuple[str, str], ...]

    @property
    def anonymized(self) -> tuple[str, ...]:
        """The columns that get a rule, in config order."""
        return tuple(col for col, _ in self.rules)


def validate_gdpr_block(raw: object, path: str) -> list[ConfigIssue]:
    """Every problem in a raw ``gdpr_compliance`` block; ``path`` is its YAML path."""
    issues: list[ConfigIssue] = []
    _parse_block(raw, path, issues)
    return issues


def gdpr_plan(spec: TableSpec) -> GdprPlan | None:
    """The table's plan, or ``None`` when it has no ``gdpr_compliance`` block.

    Raises :class:`~dpexport.errors.ConfigError` when the block is malformed.
    """
    block = spec.gdpr
    if block is None:
        return None
    issues: list[ConfigIssue] = []
    names = {"hash_key_env": block.hash_key_env, "consent_column": block.consent_column}
    path = f"{spec.qualified_name}.gdpr_compliance"
    plan = _plan(block.anonymization, list(block.excluded_fields), names, path, issues)
    if issues:
        raise ConfigError(issues)
    return plan


def _parse_block(raw: object, path: str, issues: list[ConfigIssue]) -> GdprPlan:
    if not isinstance(raw, dict):
        issues.append(ConfigIssue(path, "must be a mapping", type(raw).__name__, "a mapping"))
        return GdprPlan((), ())
    for key in raw:
        if key not in _BLOCK_KEYS:
            issues.append(
                ConfigIssue(
                    f"{path}.{key}",
                    "unknown key",
                    expected=", ".join(_BLOCK_KEYS),
                    suggestion=_nearest(str(key), _BLOCK_KEYS),
                )
            )
    names = {key: raw.get(key) for key in ("hash_key_env", "consent_column")}
    return _plan(raw.get("anonymization"), raw.get("excluded_fields"), names, path, issues)


def _plan(
    anonymization: object,
    excluded_fields: object,
    names: Mapping[str, object],
    path: str,
    issues: list[ConfigIssue],
) -> GdprPlan:
    """The plan of a block's values (raw or typed), with every problem in ``issues``."""
    rules: list[tuple[str, str]] = []
    for col, rule, where in _rule_items(anonymization, f"{path}.anonymization", issues):
        if rule not in RULES:
            issues.append(
                ConfigIssue(
                    where,
                    "unknown anonymization rule",
                    repr(rule),
                    ", ".join(RULES),
                    _nearest(str(rule), RULES),
                )
            )
        elif col in {c for c, _ in rules}:
            issues.append(ConfigIssue(where, f"column {col!r} has more than one rule"))
        else:
            rules.append((col, rule))
    excluded = _string_list(excluded_fields, f"{path}.excluded_fields", issues)
    for col in excluded:
        if col in {c for c, _ in rules}:
            issues.append(
                ConfigIssue(
                    f"{path}.excluded_fields",
                    f"column {col!r} is both excluded and anonymized",
                    expected="one or the other",
                )
            )
    for key, value in names.items():
        if value is not None and (not isinstance(value, str) or not value.strip()):
            issues.append(ConfigIssue(f"{path}.{key}", "must be a name", repr(value)))
    return GdprPlan(tuple(excluded), tuple(rules))


def _rule_items(raw: object, path: str, issues: list[ConfigIssue]) -> list[tuple[str, str, str]]:
    """``[{email: hash_sha256}, ...]`` or ``{email: hash_sha256, ...}`` as triples."""
    if raw is None:
        return []
    pairs: list[tuple[object, object, str]] = []
    if isinstance(raw, dict):
        pairs = [(k, v, f"{path}.{k}") for k, v in raw.items()]
    elif isinstance(raw, list | tuple):
        for i, item in enumerate(raw):
            if isinstance(item, dict) and len(item) == 1:
                ((k, v),) = item.items()
                pairs.append((k, v, f"{path}[{i}].{k}"))
            else:
                issues.append(
                    ConfigIssue(f"{path}[{i}]", "must be {column: rule}", repr(item)[:80])
                )
    else:
        issues.append(ConfigIssue(path, "must be a list of {column: rule}", type(raw).__name__))
    out: list[tuple[str, str, str]] = []
    for col, rule, where in pairs:
        if not isinstance(col, str) or not isinstance(rule, str):
            issues.append(ConfigIssue(where, "column and rule must be strings", repr(rule)))
        else:
            out.append((col, rule, where))
    return out


def _string_list(raw: object, path: str, issues: list[ConfigIssue]) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        issues.append(ConfigIssue(path, "must be a list of column names", repr(raw)[:80]))
        return []
    return list(raw)


def _nearest(name: str, choices: tuple[str, ...]) -> str | None:
    found = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return found[0] if found else None


# --------------------------------------------------------------------------- key


def load_hash_key(spec: TableSpec, local_root: Path | None) -> bytes:
    """The HMAC key for ``hash_sha256``.

    Taken from the environment variable named by ``gdpr_compliance.hash_key_env``
    (default ``DPEXPORT_HASH_KEY``; its UTF-8 bytes are the key). When it is unset and
    ``local_root`` is given, the key file ``local_root/kms/gdpr-hash-key`` is used,
    created with 32 random bytes and mode 0600 on first use (two processes racing get
    the same key). Otherwise :class:`~dpexport.errors.InvalidArgument` is raised: there
    is never an unkeyed hash. Messages never include key bytes.
    """
    env = spec.gdpr.hash_key_env if spec.gdpr is not None else DEFAULT_HASH_KEY_ENV
    value = os.environ.get(env)
    if value:
        return value.encode("utf-8")
    if local_root is None:
        raise InvalidArgument(
            f"GDPR hash_sha256 needs a key: set the environment variable ${env} "
            "(or run with --local-root to use a local key file)",
            table=spec.qualified_name,
        )
    return _local_key(Path(local_root) / LOCAL_KEY_FILE, spec.qualified_name)


def _local_key(path: Path, table: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        # Write the key to a private temporary file, then link it into place: the
        # link either creates the final name with its full content or fails because
        # another process won, so no reader ever sees a half-written key.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process won the race
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_bytes()
    if not key:
        raise InvalidArgument("GDPR hash key file is empty", table=table, uri=str(path))
    return key


# ------------------------------------------------------------------ value rules


def hash_value(value: str, key: bytes) -> str:
    """``hash_sha256``: HMAC-SHA256 hex digest of the UTF-8 value."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def mask_value(value: str) -> str:
    """``mask_except_last_4``: ``*`` for every character but the last 4 (all if ≤ 4)."""
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * (len(value) - 4) + value[-4:]


def truncate_ip(value: str) -> str | None:
    """``truncate_last_octet``: IPv4 /24, IPv6 /64; ``None`` when not an IP address."""
    text = value.strip()
    octets = text.split(".")
    if len(octets) == 4 and all(map(_is_octet, octets)):  # most values: 4x faster
        return f"{octets[0]}.{octets[1]}.{octets[2]}.0"
    return truncate_with_ipaddress(text)


def truncate_with_ipaddress(text: str) -> str | None:
    """:func:`truncate_ip` by ``ipaddress`` alone: any address it parses, and the judge
    of the dotted-quad shortcut in the tests."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv4Address):
        return str(ipaddress.IPv4Address(int(addr) & 0xFFFFFF00))
    mapped = addr.ipv4_mapped
    if mapped is not None:
        return f"::ffff:{ipaddress.IPv4Address(int(mapped) & 0xFFFFFF00)}"
    return str(ipaddress.IPv6Address(int(addr) & ~((1 << 64) - 1)))


def _is_octet(text: str) -> bool:
    """An IPv4 octet as ``ipaddress`` accepts one: 1-3 ASCII digits, at most 255, no
    leading zero."""
    return (
        0 < len(text) <= 3
        and text.isascii()
        and text.isdigit()
        and (text[0] != "0" or text == "0")
        and int(text) <= 255
    )


def rule_function(rule: str, key: bytes | None) -> Callable[[str], str | None]:
    """The per-value function of ``rule``; ``hash_sha256`` needs the key."""
    if rule == "hash_sha256":
        if not key:
            raise InvalidArgument("hash_sha256 needs a key; refusing an unkeyed hash")
        k = key
        return lambda v: hash_value(v, k)
    if rule == "mask_except_last_4":
        return mask_value
    if rule == "truncate_last_octet":
        return truncate_ip
    raise InvalidArgument(f"unknown anonymization rule {rule!r}")


# ----------------------------------------------------------------------- batches


def anonymize(batch: pa.RecordBatch, plan: GdprPlan, key: bytes) -> pa.RecordBatch:
    """Apply ``plan``'s rules to ``batch``; other columns pass through unchanged.

    Each column is dictionary-encoded first, so every distinct value is transformed
    once. Raises :class:`~dpexport.errors.InvalidArgument` if the batch holds an
    excluded column (they must be left out of the scan) or lacks a column a rule names.
    """
    names = batch.schema.names
    leaked = [c for c in plan.excluded if c in names]
    if leaked:
        raise InvalidArgument(
            f"excluded GDPR column(s) {', '.join(leaked)} reached anonymization; "
            "they must be left out of the scan"
        )
    if not plan.rules:
        return batch
    columns = list(batch.columns)
    fields = list(batch.schema)
    for col, rule in plan.rules:
        if col not in names:
            raise InvalidArgument(f"anonymization names column {col!r}, not in the exported data")
        i = names.index(col)
        columns[i] = _apply(columns[i], rule_function(rule, key if rule == "hash_sha256" else None))
        fields[i] = pa.field(col, columns[i].type, nullable=True, metadata=fields[i].metadata)
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields, batch.schema.metadata))


def _apply(array: pa.Array, fn: Callable[[str], str | None]) -> pa.Array:
    import pyarrow.compute as pc

    out_type = pa.large_string() if pa.types.is_large_string(array.type) else pa.string()
    if pa.types.is_dictionary(array.type):
        encoded = array
    else:
        if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
            array = pc.cast(array, pa.string())
        encoded = pc.dictionary_encode(array)
    values = encoded.dictionary
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    mapped = pa.array([None if v is None else fn(v) for v in values.to_pylist()], type=out_type)
    return pc.take(mapped, encoded.indices)
