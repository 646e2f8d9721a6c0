"""Data file and sidecar names: spec 3.3 ``filenames`` (CONTRACT §4).

A data file's name is ``filenames.pattern`` with its placeholders filled in:

- ``{entity}``: the source table's name;
- ``{yyyymmdd}``, ``{HHMMSS}``: the export's start (UTC);
- ``{uuid}``: the export id's 8 hex digits (:func:`~dpexport.storage.layout.export_id`);
- ``{format}``: ``parquet``, ``jsonl`` or ``csv``;
- ``{compression}``: ``snappy``, ``zst``, ``gz``, ``br``; nothing for NONE, and then the
  ``.`` before it goes too (``x.csv``, not ``x.csv.``).

Two parts are added to the name whatever the pattern, both by :meth:`FileNames.data`:

- ``_{NNN}`` (1-based, three digits or more), when an export writes more than one file
  into a folder, right after the (first) ``{uuid}``: every pattern holds ``{uuid}``
  (``check`` refuses one without it), and the number then stays beside the part that
  makes the name unique: ``{yyyymmdd}-{entity}-{uuid}.{format}`` gives
  ``20250916-users-7f3b4e5a_002.parquet``;
- ``.enc`` last, for a file encrypted by dpexport (client-side).

A sidecar's name is ``filenames.metadata_sidecar`` with ``{filename}`` the data file's
name; it lies in the data file's folder.

The default pattern gives CONTRACT §4's names. A manifest written with other patterns
says so (``filenames: {pattern, metadata_sidecar}``; :meth:`FileNames.manifest_block`),
so what recognises files by name after the export (``verify``, ``replicate``, a
FULL_REFRESH retiring the previous snapshot) reads them as they were written, whatever
today's config says. :func:`problems` is what ``check`` refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    Closest = Callable[[str, Iterable[str]], str | None]

from dpexport.storage.layout.data import is_manifest, is_marker, key_folder, key_name, stamp

DEFAULT_PATTERN = "{entity}_{yyyymmdd}_{HHMMSS}_{uuid}.{format}.{compression}"
DEFAULT_SIDECAR = "{filename}.metadata.json"
#: the placeholders of a data file pattern, in the default's order
PLACEHOLDERS = ("entity", "yyyymmdd", "HHMMSS", "uuid", "format", "compression")
#: the one placeholder of a sidecar pattern
FILENAME = "filename"
#: what the default sidecar pattern adds to a data file's name
SIDECAR_SUFFIX = ".metadata.json"
ENCRYPTED_SUFFIX = "enc"

_EXT = {"PARQUET": "parquet", "JSONL": "jsonl", "CSV": "csv"}
_CODEC_SUFFIX = {"SNAPPY": "snappy", "ZSTD": "zst", "GZIP": "gz", "BROTLI": "br", "NONE": ""}
_CODECS = [c for c in _CODEC_SUFFIX.values() if c]
_FIELD = re.compile(r"\{([^{}]*)\}")
#: each placeholder's text in a name, as a regular expression
_GROUPS = {
    "entity": r".+",
    "yyyymmdd": r"[0-9]{8}",
    "HHMMSS": r"[0-9]{6}",
    "uuid": r"[0-9a-f]{8}",
    "format": "|".join(_EXT.values()),
    "compression": "|".join(_CODECS),
}


def file_suffix(fmt: str, codec: str, *, encrypted: bool = False) -> str:
    """``parquet.snappy``, ``jsonl.gz``, ``csv``, ``csv.gz.enc``..."""
    parts = [_EXT[fmt]]
    if _CODEC_SUFFIX[codec]:
        parts.append(_CODEC_SUFFIX[codec])
    if encrypted:
        parts.append(ENCRYPTED_SUFFIX)
    return ".".join(parts)


def _split_suffix(suffix: str) -> tuple[str, str, bool]:
    """(extension, codec suffix or ``""``, encrypted) of a :func:`file_suffix`."""
    parts = suffix.split(".")
    encrypted = len(parts) > 1 and parts[-1] == ENCRYPTED_SUFFIX
    if encrypted:
        parts.pop()
    return parts[0], (parts[1] if len(parts) > 1 else ""), encrypted


@dataclass(frozen=True)
class DataFileName:
    """The parts of a data file name: ``stamp`` is ``yyyymmdd_HHMMSS`` (the parts its
    pattern holds, joined by ``_``), ``suffix`` a :func:`file_suffix` (the parts its
    pattern holds)."""

    entity: str
    stamp: str
    uuid8: str
    seq: int | None
    suffix: str


@dataclass(frozen=True)
class FileNames:
    """The name patterns of one table's data files and sidecars (see the module)."""

    pattern: str = DEFAULT_PATTERN
    sidecar: str = DEFAULT_SIDECAR

    @property
    def is_default(self) -> bool:
        return self.pattern == DEFAULT_PATTERN and self.sidecar == DEFAULT_SIDECAR

    def data(self, entity: str, start: datetime, uuid8: str, seq: int | None, suffix: str) -> str:
        """A data file's name; ``seq`` is 1-based and given only when the export writes
        more than one file into the folder; ``suffix`` is a :func:`file_suffix`."""
        ext, codec, encrypted = _split_suffix(suffix)
        day, time = stamp(start).split("_")
        values = {
            "entity": entity,
            "yyyymmdd": day,
            "HHMMSS": time,
            "uuid": uuid8,
            "format": ext,
            "compression": codec,
        }
        text = self.pattern if codec else self.pattern.replace(".{compression}", "")
        numbered = False

        def fill(found: re.Match[str]) -> str:
            nonlocal numbered
            name = found.group(1)
            if name == "uuid" and seq is not None and not numbered:
                numbered = True
                return f"{uuid8}_{seq:03d}"
            return values.get(name, found.group(0))  # an unknown one: check refuses it

        name = _FIELD.sub(fill, text)
        return name + (f".{ENCRYPTED_SUFFIX}" if encrypted else "")

    def parse(self, name: str) -> DataFileName | None:
        """The parts of a data file name :meth:`data` made (None for any other name).
        Every such name is recognised; its parts are the ones that built it unless the
        pattern puts ``{entity}`` right after ``{uuid}_``, where a rolled file's ``_NNN``
        and an entity starting with digits read alike."""
        found = _data_regex(self.pattern).fullmatch(name)
        if found is None:
            return None
        parts = found.groupdict()
        seq = parts.get("seq")
        return DataFileName(
            parts.get("entity") or "",
            "_".join(p for p in (parts.get("yyyymmdd"), parts.get("HHMMSS")) if p),
            parts.get("uuid") or "",
            int(seq) if seq else None,
            ".".join(p for p in (parts.get("format"), parts.get("compression"), parts["enc"]) if p),
        )

    def sidecar_of(self, key: str) -> str:
        """The sidecar's key (or name) of a data file's key (or name): same folder."""
        return key_folder(key) + self.sidecar.replace("{" + FILENAME + "}", key_name(key))

    def is_sidecar(self, name: str) -> bool:
        """Whether ``name`` is the sidecar of a data file name."""
        found = _sidecar_regex(self.sidecar).fullmatch(name)
        return found is not None and self.parse(found.group(FILENAME)) is not None

    def is_data_file(self, name: str) -> bool:
        """A data file name (not a sidecar, manifest or marker): one this pattern makes,
        or any other name holding a format's extension (a stray file is a data file)."""
        if is_marker(name) or is_manifest(name):
            return False
        if self.parse(name) is not None:
            return not self.is_sidecar(name)
        if _sidecar_regex(self.sidecar).fullmatch(name):
            return False  # the sidecar of some other name
        return any(f".{ext}" in name for ext in _EXT.values())

    def manifest_block(self) -> dict[str, str] | None:
        """The manifest's ``filenames`` block: the patterns when they are not the default."""
        if self.is_default:
            return None
        return {"pattern": self.pattern, "metadata_sidecar": self.sidecar}

    @classmethod
    def of_manifest(cls, doc: dict[str, Any]) -> FileNames:
        """The patterns a manifest's files were named with (the defaults when it says none)."""
        block = doc.get("filenames")
        if not isinstance(block, dict):
            return cls()
        pattern, sidecar = block.get("pattern"), block.get("metadata_sidecar")
        return cls(
            pattern if isinstance(pattern, str) else DEFAULT_PATTERN,
            sidecar if isinstance(sidecar, str) else DEFAULT_SIDECAR,
        )


DEFAULT_NAMES = FileNames()


@lru_cache(maxsize=64)
def _data_regex(pattern: str) -> re.Pattern[str]:
    """The names :meth:`FileNames.data` makes of ``pattern``; a placeholder met again
    must repeat its first text."""
    out: list[str] = []
    seen: set[str] = set()
    pos = 0
    for found in _FIELD.finditer(pattern):
        literal, name = pattern[pos : found.start()], found.group(1)
        pos = found.end()
        if name not in _GROUPS:  # check refuses it; such a pattern names nothing
            return re.compile(r"(?!)")
        dotted = name == "compression" and literal.endswith(".")
        out.append(re.escape(literal[:-1] if dotted else literal))
        group = f"(?P={name})" if name in seen else f"(?P<{name}>{_GROUPS[name]})"
        if name == "uuid" and name not in seen:
            group += r"(?:_(?P<seq>[0-9]{3,}))?"
        if dotted:
            group = f"(?:\\.{group})?"
        elif name == "compression":
            group = f"(?:{group})?"  # nothing for NONE
        out.append(group)
        seen.add(name)
    out.append(re.escape(pattern[pos:]))
    out.append(rf"(?:\.(?P<enc>{ENCRYPTED_SUFFIX}))?")
    return re.compile("".join(out), re.DOTALL)


@lru_cache(maxsize=64)
def _sidecar_regex(sidecar: str) -> re.Pattern[str]:
    head, sep, tail = sidecar.partition("{" + FILENAME + "}")
    if not sep:
        return re.compile(r"(?!)")
    return re.compile(f"{re.escape(head)}(?P<{FILENAME}>.+){re.escape(tail)}", re.DOTALL)


# -- the default names (CONTRACT §4) ---------------------------------------------------------
def data_filename(entity: str, start: datetime, uuid8: str, seq: int | None, suffix: str) -> str:
    """``{entity}_{yyyymmdd}_{HHMMSS}_{uuid8}[_{NNN}].{suffix}``: the default pattern's."""
    return DEFAULT_NAMES.data(entity, start, uuid8, seq, suffix)


def parse_data_filename(name: str) -> DataFileName | None:
    """The parts of a default-pattern data file name (None for any other name)."""
    return DEFAULT_NAMES.parse(name)


def sidecar_name(filename: str) -> str:
    """``{filename}.metadata.json``: the default sidecar of a data file (name or key)."""
    return filename + SIDECAR_SUFFIX


def is_data_file(name: str) -> bool:
    """A data file name under the default patterns (not a sidecar, manifest or marker)."""
    return DEFAULT_NAMES.is_data_file(name)


# -- what check refuses ----------------------------------------------------------------------
@dataclass(frozen=True)
class NameProblem:
    """One reason a pattern cannot work: ``key`` is ``pattern`` or ``metadata_sidecar``."""

    key: str
    message: str
    expected: str
    suggestion: str | None


PATTERN_EXPECTED = (
    "a file name with {entity} and {uuid}, no '/', and only the placeholders "
    + ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    + f" (the spec's: {DEFAULT_PATTERN})"
)
SIDECAR_EXPECTED = (
    "a name holding {filename} and something more, no '/', no other placeholder "
    f"(the spec's: {DEFAULT_SIDECAR})"
)
#: a sample export that :func:`problems` names files of, to see them read back
_SAMPLE = ("users", datetime(2025, 9, 16, 14, 30, 22), "7f3b4e5a", 2, "parquet.snappy")


def problems(pattern: object, sidecar: object, closest: Closest) -> list[NameProblem]:
    """Why ``filenames.pattern`` / ``filenames.metadata_sidecar`` cannot work (values
    that are not text are the model's to report); ``closest`` names the nearest valid
    placeholder to an unknown one (``check``'s "did you mean")."""
    found: list[NameProblem] = []
    if isinstance(pattern, str):
        found += _pattern_problems(pattern, closest)
    if isinstance(sidecar, str):
        found += _sidecar_problems(sidecar, closest)
    if found or not isinstance(pattern, str) or not isinstance(sidecar, str):
        return found
    names = FileNames(pattern, sidecar)
    data = names.data(*_SAMPLE)
    if is_marker(data) or is_manifest(data) or names.parse(data) is None:
        found.append(
            NameProblem(
                "pattern",
                f"makes names such as {data!r}, which "
                "dpexport cannot tell from its markers and manifests, "
                "or read back",
                PATTERN_EXPECTED,
                DEFAULT_PATTERN,
            )
        )
    elif names.parse(side := names.sidecar_of(data)) is not None or is_manifest(side):
        found.append(
            NameProblem(
                "metadata_sidecar",
                f"names the sidecar of {data!r} {side!r}, which reads as a data file or a manifest",
                SIDECAR_EXPECTED,
                DEFAULT_SIDECAR,
            )
        )
    return found


def _pattern_problems(pattern: str, closest: Closest) -> list[NameProblem]:
    out = []
    for name in _FIELD.findall(pattern):
        if name not in PLACEHOLDERS:
            near = closest(name, PLACEHOLDERS)
            fixed = pattern.replace("{" + name + "}", "{" + near + "}") if near else None
            out.append(
                NameProblem(
                    "pattern",
                    f"unknown placeholder {{{name}}}",
                    PATTERN_EXPECTED,
                    fixed or DEFAULT_PATTERN,
                )
            )
    held = set(_FIELD.findall(pattern))
    if "uuid" not in held:
        dot = pattern.find(".{format}")
        fixed = pattern[:dot] + "_{uuid}" + pattern[dot:] if dot >= 0 else pattern + "_{uuid}"
        out.append(
            NameProblem(
                "pattern",
                "has no {uuid}: names must be unique per export, "
                "or one export's files would replace another's",
                PATTERN_EXPECTED,
                fixed,
            )
        )
    if "entity" not in held:
        out.append(
            NameProblem(
                "pattern",
                "has no {entity}: the files would not say which table they hold",
                PATTERN_EXPECTED,
                "{entity}_" + pattern,
            )
        )
    if "/" in pattern or "\\" in pattern:
        out.append(
            NameProblem(
                "pattern",
                "a file name cannot hold '/' or '\\' (folders "
                "come from the destination and partitioning)",
                PATTERN_EXPECTED,
                re.sub(r"[/\\]", "_", pattern),
            )
        )
    return out


def _sidecar_problems(sidecar: str, closest: Closest) -> list[NameProblem]:
    out = []
    held = _FIELD.findall(sidecar)
    for name in held:
        if name != FILENAME:
            near = closest(name, (FILENAME,))
            fixed = sidecar.replace("{" + name + "}", "{filename}") if near else None
            out.append(
                NameProblem(
                    "metadata_sidecar",
                    f"unknown placeholder {{{name}}}",
                    SIDECAR_EXPECTED,
                    fixed or DEFAULT_SIDECAR,
                )
            )
    count = held.count(FILENAME)
    if count == 0 and not out:
        out.append(
            NameProblem(
                "metadata_sidecar",
                "has no {filename}: every data file's sidecar would have the same name",
                SIDECAR_EXPECTED,
                "{filename}." + sidecar.lstrip(".") if sidecar else DEFAULT_SIDECAR,
            )
        )
    elif count > 1:
        out.append(
            NameProblem(
                "metadata_sidecar",
                "holds {filename} more than once",
                SIDECAR_EXPECTED,
                DEFAULT_SIDECAR,
            )
        )
    if sidecar == "{filename}":
        out.append(
            NameProblem(
                "metadata_sidecar",
                "is the data file's own name: the sidecar would overwrite the data",
                SIDECAR_EXPECTED,
                DEFAULT_SIDECAR,
            )
        )
    if "/" in sidecar or "\\" in sidecar:
        out.append(
            NameProblem(
                "metadata_sidecar",
                "a sidecar lies beside its data file: its name cannot hold '/' or '\\'",
                SIDECAR_EXPECTED,
                re.sub(r"[/\\]", "_", sidecar),
            )
        )
    return out
