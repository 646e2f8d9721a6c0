"""Values of the right type that cannot work (issue 17): ``check`` refuses them.

The models take these values by type, and only the run (or nothing) used to notice:
an empty file, an unknown named check or a parameter it cannot take, a cron expression
croniter reads otherwise than meant, a retry policy that never tries, a lease that
lapses before it is renewed, a share over 100%, a ``deduplication`` text the exporter
cannot read, a file name pattern it cannot name files by. Like
:mod:`dpexport.config.validate`, these run on the normalised document whether or not
the models accepted the rest, and report at each value's own YAML path what was
expected and the nearest valid choice, so one pass names every problem.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dpexport.config import steps as spec_steps
from dpexport.config import units
from dpexport.config.issues import Issues, closest
from dpexport.config.loader import Path, format_path
from dpexport.config.security_check import check_access
from dpexport.errors import ConfigIssue
from dpexport.storage.layout import names

if TYPE_CHECKING:
    from dpexport.config.spec import ResolvedConfig

SECTIONS = ("append_only", "full_refresh", "incremental", "high_volume")
#: CONTRACT §8 lease: renewed every 30 s, lapsing 2 minutes after the last renewal
RENEW_EVERY = timedelta(seconds=30)
EXPIRES_AFTER = timedelta(minutes=2)
DEDUP_FORMS = (
    "'by COLUMN', 'by COLUMN, COLUMN' (or 'by A and B'), optionally followed by "
    "'on consumer side' (then the exporter drops nothing); or leave the key out"
)
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
#: CONTRACT §8's ``deduplication`` forms, as the planner reads them
DEDUP = re.compile(
    rf"^by\s+{_IDENT}(?:\s*(?:,|\s+and\s+)\s*{_IDENT})*(?:\s+on\s+consumer\s+side)?$",
    re.IGNORECASE,
)


def check_values(data: object, issues: Issues) -> None:
    """Report every value of the normalised ``data`` that has the right type but
    cannot work, each at its YAML path through ``issues``."""
    if issues.doc.data is None or issues.doc.data == {}:
        issues.add(
            (),
            "the config is empty (no keys, or comments only): it names no table to export",
            expected="top-level keys such as exports: [{source: dataset.table, destination: "
            "gs://BUCKET/...}]; `dpexport init` writes a starter config",
        )
        return
    if not isinstance(data, dict):
        return
    for index, item in enumerate(_list(data.get("exports"))):
        if isinstance(item, dict):
            _check_validation(("exports", index, "validation"), item.get("validation"), issues)
    _check_schedules(data, issues)
    _check_retry(data.get("retry_configuration"), issues)
    _check_lease(data.get("idempotency_design"), issues)
    _check_shares(data, issues)
    _check_deduplication(data, issues)
    _check_filenames(data.get("filenames"), issues)
    check_pipeline(data, issues)
    check_encryption(data.get("encryption"), issues)
    check_access(data, issues)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _items(value: object) -> list[tuple[str, Any]]:
    return list(value.items()) if isinstance(value, dict) else []


def _check_validation(path: Path, items: object, issues: Issues) -> None:
    """Each named check and its parameters, as the run will parse them."""
    if not isinstance(items, list) or not items:
        return
    # the check registry loads the checks (and pyarrow): only for a config that has some
    from dpexport.checks.registry import NO_VALUE, item_problems

    for index, item in enumerate(items):
        for problem in item_problems(item)[1]:
            if problem.shape:
                continue  # the model reports an item that is not a name or {name: params}
            extra: dict[str, Any] = {} if problem.value is NO_VALUE else {"value": problem.value}
            issues.add(
                (*path, index, *problem.where),
                problem.message,
                expected=problem.expected,
                suggestion=problem.suggestion,
                **extra,
            )


def _check_schedules(data: dict[str, Any], issues: Issues) -> None:
    """Cron expressions croniter accepts but reads otherwise than meant."""
    where: list[tuple[Path, object]] = []
    for index, item in enumerate(_list(data.get("exports"))):
        if isinstance(item, dict):
            where.append((("exports", index, "schedule"), item.get("schedule")))
    for table, entry in _items(data.get("full_refresh")):
        if isinstance(entry, dict):
            where.append((("full_refresh", table, "frequency"), entry.get("frequency")))
    for index, rep in enumerate(_list(data.get("replication"))):
        if isinstance(rep, dict):
            where.append((("replication", index, "schedule"), rep.get("schedule")))
    schedules = [(path, text) for path, text in where if isinstance(text, str)]
    if not schedules:
        return
    from dpexport.config.cron import misread  # croniter loads with a schedule only

    for path, text in schedules:
        problem = misread(text)
        if problem is not None:
            issues.add(
                path,
                problem.message,
                value=text,
                expected=problem.expected,
                suggestion=problem.suggestion,
            )


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _check_retry(block: object, issues: Issues) -> None:
    """Spec 7.1: a policy that tries at least once and whose waits grow."""
    if not isinstance(block, dict):
        return
    path: Path = ("retry_configuration",)
    attempts = _number(block.get("max_attempts"))
    if attempts is not None and attempts < 1:
        issues.add(
            (*path, "max_attempts"),
            "max_attempts counts the first attempt: below 1 nothing would ever be tried",
            value=block["max_attempts"],
            expected="an integer >= 1 (1: no retry; the spec's 5)",
            suggestion="1",
        )
    initial = _number(block.get("initial_delay_seconds"))
    if initial is not None and initial < 0:
        issues.add(
            (*path, "initial_delay_seconds"),
            "a wait cannot be negative",
            value=block["initial_delay_seconds"],
            expected="seconds >= 0 (the spec's 30)",
            suggestion="0",
        )
    largest = _number(block.get("max_delay_seconds"))
    floor = initial if initial is not None and initial >= 0 else 30.0
    if largest is not None and largest < floor:
        issues.add(
            (*path, "max_delay_seconds"),
            f"max_delay_seconds is below initial_delay_seconds ({floor:g}): every wait "
            "would be cut to it, so the first wait would not be the initial one",
            value=block["max_delay_seconds"],
            expected=f"seconds >= initial_delay_seconds ({floor:g})",
            suggestion=f"{floor:g}",
        )
    _check_growth(block, path, issues)


def _check_growth(block: dict[str, Any], path: Path, issues: Issues) -> None:
    multiplier = _number(block.get("multiplier"))
    exponential = block.get("backoff_strategy", "exponential") == "exponential"
    if multiplier is not None and multiplier < 1 and exponential:
        issues.add(
            (*path, "multiplier"),
            "an exponential backoff's multiplier below 1 shortens each wait instead",
            value=block["multiplier"],
            expected="a number >= 1 (the spec's 2)",
            suggestion="2",
        )
    deadline = _number(block.get("deadline_seconds"))
    if deadline is not None and deadline <= 0:
        issues.add(
            (*path, "deadline_seconds"),
            "a deadline of 0 or less gives up before the first retry",
            value=block["deadline_seconds"],
            expected="seconds > 0 (the spec's example: 7200), or leave it out",
            suggestion="7200",
        )


def _duration(value: object) -> timedelta | None:
    try:
        return units.parse_duration(value) if value is not None else None
    except ValueError:
        return None  # the model reports what is not a duration


def human(delta: timedelta) -> str:
    """``timedelta(minutes=2)`` -> ``"2 minutes"``: the largest whole unit."""
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


def _check_lease(block: object, issues: Issues) -> None:
    """CONTRACT §8: a lease is renewed, and lapses only after a renewal was missed."""
    lease = block.get("lease") if isinstance(block, dict) else None
    if not isinstance(lease, dict):
        return
    path: Path = ("idempotency_design", "lease")
    given: dict[str, timedelta] = {}
    zero = False
    for key, default in (("renew_every", RENEW_EVERY), ("expires_after", EXPIRES_AFTER)):
        value = _duration(lease.get(key))
        if value is not None and value <= timedelta(0):
            zero = True
            issues.add(
                (*path, key),
                "a lease time of 0 does not work: the holder would renew without pause, "
                "or the lease would lapse as it is taken",
                value=lease[key],
                expected="a duration > 0",
                suggestion=human(default),
            )
        elif value is not None:
            given[key] = value
    if zero:
        return
    renew = given.get("renew_every", RENEW_EVERY)
    expires = given.get("expires_after", EXPIRES_AFTER)
    if expires > renew:
        return
    key = "expires_after" if "expires_after" in given else "renew_every"
    issues.add(
        (*path, key),
        f"the lease lapses {human(expires)} after its last renewal but is renewed only "
        f"every {human(renew)}: a second runner would take over a live export",
        value=lease[key],
        expected="expires_after longer than renew_every (CONTRACT §8: renewed every "
        "30 seconds, lapsing 2 minutes after the last renewal)",
        suggestion=human(renew * 4) if key == "expires_after" else human(expires / 4),
    )


def _check_shares(data: dict[str, Any], issues: Issues) -> None:
    """Percentages that are shares of a whole: at most 100%."""
    metrics = data.get("metrics")
    rate = metrics.get("failure_rate") if isinstance(metrics, dict) else None
    text = rate.get("threshold") if isinstance(rate, dict) else None
    try:
        parsed = units.parse_rate(text) if isinstance(text, str) else None
    except ValueError:
        parsed = None  # the model reports what is not a rate
    if parsed is not None and isinstance(text, str):
        path: Path = ("metrics", "failure_rate", "threshold")
        if parsed.fraction > 1:
            issues.add(
                path,
                "a failure rate is a share of export attempts: it cannot pass 100%",
                value=text,
                expected="<percent>% over <duration> with a percent from 0 to 100 "
                "(e.g. 5% over 1 hour)",
                suggestion=re.sub(r"^\s*[\d.]+\s*%", "100%", text),
            )
        if parsed.window <= timedelta(0):
            issues.add(
                path,
                "a rate over a window of 0 counts no export",
                value=text,
                expected="a window > 0 (e.g. 5% over 1 hour)",
                suggestion=f"{parsed.fraction * 100:g}% over 1 hour",
            )
    for codec, info in _items(data.get("compression_matrix")):
        ratio = info.get("compression_ratio") if isinstance(info, dict) else None
        try:
            low, high = units.parse_percent_range(ratio)
        except ValueError:
            continue  # reported by validate
        if high > 1:
            issues.add(
                ("compression_matrix", codec, "compression_ratio"),
                "a compression ratio is the share of bytes saved: it cannot pass 100%",
                value=ratio,
                expected="a percentage from 0 to 100, or a range such as 60-70%",
                suggestion=f"{min(low, 1) * 100:g}-100%" if low < 1 else "100%",
            )


def _check_deduplication(data: dict[str, Any], issues: Issues) -> None:
    """CONTRACT §8's ``deduplication`` forms, wherever a table may set it."""
    blocks: list[tuple[Path, Any]] = [
        (("exports", index), item) for index, item in enumerate(_list(data.get("exports")))
    ]
    for section in SECTIONS:
        blocks += [((section, name), entry) for name, entry in _items(data.get(section))]
    for path, block in blocks:
        text = block.get("deduplication") if isinstance(block, dict) else None
        if not isinstance(text, str) or DEDUP.match(text.strip()):
            continue
        issues.add(
            (*path, "deduplication"),
            "not a deduplication the exporter can read",
            value=text,
            expected=DEDUP_FORMS,
            suggestion=_dedup_hint(text.strip(), block.get("merge_key")),
        )


def _dedup_hint(text: str, merge_key: object) -> str | None:
    """``post_id`` -> ``by post_id``; else ``by`` the table's merge key, if it has one."""
    if re.search(r"[_\d]", text) and DEDUP.match(f"by {text}"):
        return f"by {text}"
    if isinstance(merge_key, str) and re.fullmatch(_IDENT, merge_key):
        return f"by {merge_key}"
    if isinstance(merge_key, list) and merge_key and all(isinstance(k, str) for k in merge_key):
        candidate = "by " + ", ".join(merge_key)
        return candidate if DEDUP.match(candidate) else None
    return None


def _check_filenames(block: object, issues: Issues) -> None:
    """Spec 3.3 name patterns the exporter can name files by and read back: known
    placeholders, ``{entity}`` and ``{uuid}`` (names unique per export), no ``/``; a
    sidecar name that holds ``{filename}`` and is not the file's own name."""
    if not isinstance(block, dict):
        return
    pattern = block.get("pattern")
    sidecar = block.get("metadata_sidecar", names.DEFAULT_SIDECAR)
    for problem in names.problems(pattern or names.DEFAULT_PATTERN, sidecar, closest):
        given = {"value": block[problem.key]} if problem.key in block else {}
        issues.add(
            ("filenames", problem.key),
            problem.message,
            expected=problem.expected,
            suggestion=problem.suggestion,
            **given,
        )


def check_pipeline(data: dict[str, Any], issues: Issues) -> None:
    """Spec 5.2 ``validation_checks``: every name a step of its phase, no step left out
    that exactly-once needs (:mod:`dpexport.config.steps`); spec 10.1's codecs."""
    block = data.get("validation_checks")
    for phase, listed in _items(block):
        known = spec_steps.PHASES.get(phase)
        if known is None or not isinstance(listed, list):
            continue  # an unknown phase or a non-list: the model reports it
        for index, step in enumerate(listed):
            if step in known:
                continue
            home = spec_steps.ALL_STEPS.get(step) if isinstance(step, str) else None
            issues.add(
                ("validation_checks", phase, index),
                f"{step} is a {home} step, not a {phase} one" if home else "unknown step",
                value=step,
                expected=f"one of {', '.join(known)}",
                suggestion=None if home else closest(step, spec_steps.ALL_STEPS),
            )
        for step in known:
            if step in spec_steps.REQUIRED and step not in listed:
                issues.add(
                    ("validation_checks", phase),
                    f"leaves out {step}, which exactly-once export needs: "
                    f"{spec_steps.REQUIRED[step]}",
                    expected=f"{phase} listing {step} (or leave {phase} out: all its steps run)",
                    suggestion=step,
                )
    strategies = data.get("optimization_strategies")
    compression = strategies.get("compression") if isinstance(strategies, dict) else None
    for key, codec in _items(compression):
        if key in ("high_volume_tables", "low_latency_tables") and isinstance(codec, str):
            path = ("optimization_strategies", "compression", key)
            issues.choice(path, codec, ("SNAPPY", "ZSTD", "GZIP", "BROTLI", "NONE"), "codec")


def check_encryption(block: object, issues: Issues) -> None:
    """Spec 6.3's words that ask for what dpexport does (:mod:`dpexport.security.settings`):
    provider-managed AES-256 at rest, customer-managed keys for the CMEK tables, an AWS
    KMS key for S3. Anything else is refused here, never accepted and ignored."""
    if not isinstance(block, dict):
        return
    from dpexport.security import settings as enc

    at_rest = block.get("at_rest")
    sensitive = at_rest.get("sensitive_data") if isinstance(at_rest, dict) else None
    words = (
        (("at_rest",), at_rest, "method", enc.AT_REST_METHODS, enc.method_accepted),
        (("at_rest",), at_rest, "algorithm", enc.AT_REST_ALGORITHMS, enc.algorithm_accepted),
        (("at_rest", "sensitive_data"), sensitive, "method", enc.SENSITIVE_METHODS,
         enc.method_accepted),
        (("at_rest", "sensitive_data"), sensitive, "algorithm", enc.SENSITIVE_ALGORITHMS,
         enc.algorithm_accepted),
    )  # fmt: skip
    for where, holder, key, accepted, takes in words:
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, str) and not takes(value, accepted):
            issues.add(
                ("encryption", *where, key),
                _ENCRYPTION_WHY[(where[-1], key)],
                value=value,
                expected="one of " + ", ".join(repr(a) for a in accepted),
                suggestion=accepted[0],
            )
    cross = block.get("cross_cloud")
    aws = cross.get("aws_s3") if isinstance(cross, dict) else None
    key_name = aws.get("kms_master_key") if isinstance(aws, dict) else None
    if isinstance(key_name, str) and not (
        enc.is_aws_kms_key(key_name) or enc.is_placeholder(key_name)
    ):
        issues.add(
            ("encryption", "cross_cloud", "aws_s3", "kms_master_key"),
            "not an AWS KMS key S3 can encrypt with (SSE-KMS)",
            value=key_name,
            expected=enc.AWS_KEY_FORMS,
        )


_ENCRYPTION_WHY = {
    ("at_rest", "method"): "dpexport leaves tables not marked CMEK to the store's own "
    "provider-managed keys; a customer-managed key is set per table (encryption: CMEK)",
    ("at_rest", "algorithm"): "the stores' default encryption at rest is AES-256; "
    "dpexport cannot choose another cipher",
    ("sensitive_data", "method"): "a CMEK table is encrypted with a customer-managed key "
    "(the store's server-side encryption, or dpexport's envelope on a local folder)",
    ("sensitive_data", "algorithm"): "a CMEK table is encrypted with AES-256 (AES-256-GCM "
    "when dpexport encrypts it); dpexport cannot choose another cipher",
}


def azure_account_issues(config: ResolvedConfig) -> list[ConfigIssue]:
    """``check`` without ``--local-root``: each spec 1.3 Azure URL (``https://ACCOUNT.
    blob.core.windows.net/...``) whose account the Azure credentials at hand do not
    name, at its YAML path (a table's destination only when no bucket holds it). Under
    ``--local-root`` no credentials are used, so this is not asked."""
    from dpexport.storage.uri import azure_account_problem

    buckets = [u.rstrip("/") + "/" for u in config.buckets.values()]
    found: list[tuple[str, str | None]] = [
        (format_path(("buckets", n)), u) for n, u in config.buckets.items()
    ]
    found += [(f"replication[{i}].target", r.target) for i, r in enumerate(config.replication)]
    found += [
        ("dlq_configuration.storage_location", config.dlq_configuration.storage_location),
        ("idempotency_design.storage.location", config.idempotency_design.storage.location),
    ]
    for spec in config.tables:
        if not any(spec.destination.startswith(b) for b in buckets):
            source = spec.origins.get("source", "")
            item = source.endswith(".source")  # else a section 4 / 3.2 entry's path
            path = source.removesuffix("source") + "destination" if item else source
            found.append((path, spec.destination))
    out: list[ConfigIssue] = []
    for path, uri in found:
        problem = azure_account_problem(uri) if uri else None
        if problem is not None:
            line = config.lines.get(path)
            out.append(ConfigIssue(path, problem, value=uri, line=line))
    return out
