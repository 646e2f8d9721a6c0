"""Spec 2.1-2.4: format defaults (``formats``) and the ``compression_matrix``.

Also the checks of their values that the types alone cannot make (a CSV delimiter
that is two characters, an encoding Python does not know, a Parquet compression level
outside its codec's range): :func:`check_format_values`, which ``check`` runs on the
raw document so each problem has its own YAML path and nearest valid choice.
"""

from __future__ import annotations

import codecs
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from dpexport.config import units
from dpexport.config.issues import Issues
from dpexport.config.models.common import Block, Size, Text, Word, empty_list
from dpexport.config.spec import NULL_JSON, TIMESTAMP_FORMATS

if TYPE_CHECKING:
    from dpexport.config.loader import Path

#: spellings of a timestamp format beyond the spec's words (``RFC 3339``,
#: ``unix-epoch-millis`` match those by letters and digits alone)
_TIMESTAMP_ALIASES = {
    "UNIXEPOCHSECONDS": "UNIX_EPOCH",
    "UNIXSECONDS": "UNIX_EPOCH",
    "EPOCH": "UNIX_EPOCH",
    "UNIXMILLIS": "UNIX_EPOCH_MILLIS",
    "UNIXMICROS": "UNIX_EPOCH_MICROS",
    "UNIXNANOS": "UNIX_EPOCH_NANOS",
}


def timestamp_format(value: object) -> object:
    """The spec's word for a timestamp format (``rfc 3339`` -> ``RFC3339``); anything
    else unchanged (for :func:`check_format_values` to report)."""
    if not isinstance(value, str):
        return value
    key = re.sub(r"[^A-Z0-9]", "", value.upper())
    for name in TIMESTAMP_FORMATS:
        if name.replace("_", "") == key:
            return name
    return _TIMESTAMP_ALIASES.get(key, value)


def _null_word(value: object) -> object:
    # `null_representation: null` unquoted is YAML's null: it means JSON's.
    return NULL_JSON if value is None else value


TimestampFormat = Annotated[str, BeforeValidator(timestamp_format)]
NullRepresentation = Annotated[str, BeforeValidator(_null_word)]


class SchemaEvolutionBlock(Block):
    """Spec 2.1 ``schema_evolution`` (also an ``exports`` item's, spec 8.4)."""

    enabled: bool | None = None
    backward_compatible: bool | None = None
    #: spec 8.4 writes ``compatibility: "backward"``; it implies backward_compatible.
    compatibility: Literal["backward", "forward", "full", "none"] | None = None
    version_column: str | None = None


class ParquetFormat(Block):
    """Spec 2.1 ``format_config`` for PARQUET."""

    version: Text = "2.6"
    compression: Word | None = None
    encoding: Word = "PLAIN_DICTIONARY"
    row_group_size: Size = 128 * 1024 * 1024
    page_size: Size = 1024 * 1024
    compression_level: int | None = None
    schema_evolution: SchemaEvolutionBlock | None = None


class JsonlSettings(Block):
    """Spec 2.2's text settings: ``formats.JSONL``'s, or an ``exports`` item's ``jsonl:``,
    whose keys override the format block's for that table."""

    newline_delimited: bool = True
    encoding: str = "UTF-8"
    schema_included: bool = False
    timestamp_format: TimestampFormat = "RFC3339"
    null_representation: NullRepresentation = NULL_JSON


class JsonlFormat(JsonlSettings):
    """Spec 2.2 ``format_config`` for JSONL."""

    compression: Word | None = None


class CsvSettings(Block):
    """Spec 2.3's text settings: ``formats.CSV``'s, or an ``exports`` item's ``csv:``,
    whose keys override the format block's for that table."""

    delimiter: str = ","
    header: bool = True
    quote_character: str = '"'
    escape_character: str = "\\"
    null_marker: str = ""
    encoding: str = "UTF-8"


class CsvFormat(CsvSettings):
    """Spec 2.3 ``format_config`` for CSV."""

    compression: Word | None = None


def table_settings(base: Block, own: Block | None) -> dict[str, Any]:
    """A table's text settings: ``own`` (its ``exports`` item's ``csv:``/``jsonl:``)
    for the keys it sets, ``base`` (the ``formats`` block) for the rest."""
    chosen = own.model_fields_set if own is not None else set()
    return {n: getattr(own if n in chosen else base, n) for n in type(base).model_fields}


class Formats(Block):
    """``formats:`` one spec 2.x block per format, with or without its ``format_config:``."""

    PARQUET: ParquetFormat = Field(default_factory=ParquetFormat.model_construct)
    JSONL: JsonlFormat = Field(default_factory=JsonlFormat.model_construct)
    CSV: CsvFormat = Field(default_factory=CsvFormat.model_construct)


class CompressionInfo(Block):
    """One codec of spec 2.4's ``compression_matrix``; ``compression_ratio`` (``60-70%``)
    is the expected band that the post-export ratio check compares against."""

    compatibility: str | None = None
    compression_ratio: str | None = None
    speed: str | None = None
    use_for: list[str] = Field(default_factory=empty_list)


# -- value checks -------------------------------------------------------------------

#: names offered as the nearest valid encoding (any Python text codec is accepted)
COMMON_ENCODINGS = (
    "UTF-8",
    "UTF-8-SIG",
    "UTF-16",
    "UTF-16LE",
    "UTF-16BE",
    "UTF-32",
    "ISO-8859-1",
    "Latin-1",
    "ISO-8859-15",
    "Windows-1252",
    "ASCII",
    "Shift_JIS",
    "EUC-JP",
    "GB18030",
    "Big5",
    "EUC-KR",
    "KOI8-R",
)
#: Python codecs that are not the encoding of a text file
_NOT_FILE_ENCODINGS = frozenset(
    {"idna", "punycode", "unicode-escape", "raw-unicode-escape", "undefined", "mbcs", "oem"}
)
#: compression levels each Parquet codec takes (pyarrow's ``Codec.minimum_/
#: maximum_compression_level``; DuckDB's COPY takes the same ZSTD range)
PARQUET_LEVELS: dict[str, tuple[int, int]] = {
    "ZSTD": (-131072, 22),
    "GZIP": (1, 9),
    "BROTLI": (0, 11),
}
#: what a CSV setting cannot contain: rows end with a line feed
_LINE_BREAKS = ("\n", "\r")


def text_encoding(name: object) -> str | None:
    """Python's name of the text encoding ``name`` (``ISO-8859-1`` -> ``iso8859-1``),
    or None when it is not one a file can be written in."""
    if not isinstance(name, str):
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_FILE_ENCODINGS:
        return None
    return info.name


def _block(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None  # type: ignore[assignment]
    return data if isinstance(data, dict) else {}


def check_format_values(data: dict[str, Any], issues: Issues) -> None:
    """Report every format setting whose value cannot do what it says: CSV and JSONL
    text settings and encodings, Parquet sizes and compression levels (``formats``),
    and each ``exports`` item's ``max_file_size`` and ``optimization``."""
    _check_csv(("formats", "CSV"), _block(data, "formats", "CSV"), issues)
    _check_jsonl(("formats", "JSONL"), _block(data, "formats", "JSONL"), issues)
    _check_table_text(data, issues)
    parquet = _block(data, "formats", "PARQUET")
    base_codec = str(parquet.get("compression") or "SNAPPY").upper()
    _check_sizes(("formats", "PARQUET"), parquet, issues)
    _check_level(("formats", "PARQUET"), parquet, base_codec, issues)
    exports = data.get("exports")
    for index, item in enumerate(exports if isinstance(exports, list) else []):
        if not isinstance(item, dict):
            continue
        _check_size(("exports", index), item, "max_file_size", "1GB", issues)
        if str(item.get("format") or "PARQUET").upper() != "PARQUET":
            continue
        codec = str(item.get("compression") or base_codec).upper()
        opt = item.get("optimization")
        if isinstance(opt, dict):
            _check_sizes(("exports", index, "optimization"), opt, issues)
            _check_level(("exports", index, "optimization"), opt, codec, issues)
        if not isinstance(opt, dict) or opt.get("compression_level") is None:
            # the formats block's level applies to this table, in its codec
            _check_level(("formats", "PARQUET"), parquet, codec, issues)


def _check_table_text(data: dict[str, Any], issues: Issues) -> None:
    """Each ``exports`` item's ``csv:``/``jsonl:`` keys, checked with the ``formats``
    block's other settings (a delimiter against the quote it will meet); an issue is
    reported at the item's key only, the format block's own at the format block."""
    exports = data.get("exports")
    for index, item in enumerate(exports if isinstance(exports, list) else []):
        for key, fmt, check in (("csv", "CSV", _check_csv), ("jsonl", "JSONL", _check_jsonl)):
            own = item.get(key) if isinstance(item, dict) else None
            if isinstance(own, dict) and own:
                merged = {**_block(data, "formats", fmt), **own}
                found = Issues(issues.doc)
                found.rewrites = issues.rewrites
                check(("exports", index, key), merged, found)
                for issue in found.items:
                    if issue.path.rsplit(".", 1)[-1] in own and issue not in issues.items:
                        issues.items.append(issue)


def _check_sizes(path: Path, block: dict[str, Any], issues: Issues) -> None:
    for key, default in (("row_group_size", "128MB"), ("page_size", "1MB")):
        _check_size(path, block, key, default, issues)


def _check_size(path: Path, block: dict[str, Any], key: str, default: str, issues: Issues) -> None:
    """A size that must hold at least one byte (``0`` would mean no rows a group, or a
    new file before every row); other faults are the type's to report."""
    value = block.get(key)
    if value is None:
        return
    try:
        size = units.parse_size(value)
    except ValueError:
        return
    if size <= 0:
        issues.add(
            (*path, key),
            "must be more than 0 bytes",
            value=value,
            expected="a positive size such as " + default,
            suggestion=default,
        )


def _check_level(path: Path, block: dict[str, Any], codec: str, issues: Issues) -> None:
    """A Parquet ``compression_level`` within the range of the codec it applies to."""
    level = block.get("compression_level")
    if not isinstance(level, int) or isinstance(level, bool):
        return  # absent, or the type's to report
    ranges = ", ".join(f"{c} {lo} to {hi}" for c, (lo, hi) in PARQUET_LEVELS.items())
    span = PARQUET_LEVELS.get(codec)
    if span is None:
        if codec in ("SNAPPY", "NONE"):
            issues.add(
                (*path, "compression_level"),
                f"{codec} has no compression levels",
                value=level,
                expected=f"no compression_level, or a codec that has levels ({ranges})",
            )
        return
    low, high = span
    if not low <= level <= high:
        issues.add(
            (*path, "compression_level"),
            f"outside {codec}'s compression levels",
            value=level,
            expected=f"an integer from {low} to {high} for {codec}",
            suggestion=str(min(max(level, low), high)),
        )


def _one_char(path: Path, key: str, value: object, issues: Issues, *, empty_ok: bool) -> bool:
    """A CSV delimiter, quote or escape: one ASCII character, not a line break (the
    reader parses bytes). Reports and returns False when it is not."""
    if not isinstance(value, str):
        return False
    if value == "" and empty_ok:
        return True
    what = {"delimiter": "delimiter", "quote_character": "quote", "escape_character": "escape"}
    nearest = {"delimiter": ",", "quote_character": '"', "escape_character": "\\"}[key]
    if len(value) == 1 and value.isascii() and value not in _LINE_BREAKS:
        return True
    if value in _LINE_BREAKS:
        problem = f"a line break cannot be the {what[key]} character: it ends a row"
    elif value == "":
        problem = f"the {what[key]} character cannot be empty" + (
            ": fields holding the delimiter or a line break are quoted"
            if key != "delimiter"
            else ""
        )
    else:
        problem = f"the {what[key]} must be one ASCII character"
    first = value[:1]
    ok_first = first.isascii() and first not in _LINE_BREAKS and first != ""
    issues.add(
        (*path, key),
        problem,
        value=value,
        expected="one ASCII character other than CR or LF"
        + (", or empty (quotes are then doubled)" if empty_ok else ""),
        suggestion=first if ok_first else nearest,
    )
    return False


def _check_csv(path: Path, block: dict[str, Any], issues: Issues) -> None:
    delimiter, quote = block.get("delimiter", ","), block.get("quote_character", '"')
    escape, marker = block.get("escape_character", "\\"), block.get("null_marker", "")
    ok_delim = _one_char(path, "delimiter", delimiter, issues, empty_ok=False)
    ok_quote = _one_char(path, "quote_character", quote, issues, empty_ok=False)
    ok_escape = _one_char(path, "escape_character", escape, issues, empty_ok=True)
    if ok_delim and ok_quote and delimiter == quote:
        issues.add(
            (*path, "delimiter"),
            "the delimiter and the quote character must differ",
            value=delimiter,
            expected=f"a character other than the quote {quote!r}",
            suggestion=";" if quote == "," else ",",
        )
    if ok_delim and ok_escape and escape and escape != quote and delimiter == escape:
        issues.add(
            (*path, "delimiter"),
            "the delimiter and the escape character must differ",
            value=delimiter,
            expected=f"a character other than the escape {escape!r}",
            suggestion=";" if escape == "," else ",",
        )
    if isinstance(marker, str) and ok_delim:
        specials = {delimiter, *_LINE_BREAKS}
        specials |= {quote} if ok_quote else set()
        specials |= {escape} if ok_escape and escape else set()
        if any(c in marker for c in specials):
            both = " (a field equal to the delimiter is two empty fields)"
            issues.add(
                (*path, "null_marker"),
                "a NULL is written unquoted, so the null marker cannot hold the delimiter, "
                "the quote, the escape or a line break" + (both if marker == delimiter else ""),
                value=marker,
                expected="text without those characters, such as '' or 'NULL'",
                suggestion="",
            )
    _check_encoding(path, block, {"null_marker": marker}, issues)


def _check_jsonl(path: Path, block: dict[str, Any], issues: Issues) -> None:
    fmt = block.get("timestamp_format")
    if isinstance(fmt, str) and timestamp_format(fmt) not in TIMESTAMP_FORMATS:
        issues.choice((*path, "timestamp_format"), fmt, TIMESTAMP_FORMATS, "timestamp format")
    marker = _null_word(block.get("null_representation", NULL_JSON))
    _check_encoding(path, block, {"null_representation": marker}, issues)


def _check_encoding(
    path: Path, block: dict[str, Any], texts: dict[str, object], issues: Issues
) -> None:
    """``encoding`` names a text encoding, and it can hold the ``texts`` the file writes."""
    name = block.get("encoding", "UTF-8")
    if not isinstance(name, str):
        return
    codec = text_encoding(name)
    if codec is None:
        issues.add(
            (*path, "encoding"),
            "unknown text encoding",
            value=name,
            expected="a text encoding such as " + ", ".join(COMMON_ENCODINGS[:8]),
            suggestion=_nearest_encoding(name),
        )
        return
    for key, text in texts.items():
        if not isinstance(text, str):
            continue
        try:
            text.encode(codec)
        except UnicodeEncodeError:
            issues.add(
                (*path, key),
                f"cannot be written in {name}",
                value=text,
                expected=f"text that {name} can hold",
            )


def _nearest_encoding(name: str) -> str | None:
    from dpexport.config.issues import closest  # the same "did you mean" as every check

    return closest(name, COMMON_ENCODINGS)
