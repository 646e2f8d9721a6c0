"""URIs to stores: ``gs://B/P``, ``s3://B/P``, ``az://C/P`` and local paths.

Spec 1.3's Azure form ``https://ACCOUNT.blob.core.windows.net/C/P`` is ``az://C/P`` in
the storage account ``ACCOUNT``: the same store, the account named by the URL instead of
by the credentials (which must then name that account, or none). Under ``--local-root``
it maps to the same folder as ``az://C/P``. No other ``https://`` host is a store.

Under ``--local-root DIR`` every cloud URI maps to the folder ``DIR/{scheme}/{bucket}``
(CONTRACT §2), so a production config runs unchanged on one machine.

Parsing is strict (issue 15): a URI that is almost one is refused, never taken as a
local path. :func:`uri_problem` says what is wrong with a URI (the config checks report
it at its YAML path); :func:`parse_uri` raises it. Refused:

- a scheme-like prefix (``gs:/b``, ``gs:b``, ``gcs://b``, ``GS://b``, ``C:\\x``) that is
  not exactly ``gs://``, ``s3://``, ``az://``, spec 1.3's ``https://`` Azure URL (or
  ``file://``, a local path); schemes are lower-case, as the clouds write them;
- an empty bucket (``gs:///x``) or a name its cloud refuses (:func:`bucket_problem`);
- in a cloud URI's key, an empty segment (``gs://b//x/``; only the trailing ``/`` of a
  folder is allowed) and ``.`` or ``..`` segments;
- anywhere, local paths included: NUL, newline, CR, tab and every other control
  character (Unicode ``Cc``), and the line and paragraph separators.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dpexport.errors import InvalidArgument, UsageError
from dpexport.storage.base import Store
from dpexport.storage.local import LocalStore

if TYPE_CHECKING:
    from dpexport.reliability.retry import RetryPolicy
    from dpexport.security.identity import Identity

CLOUD_SCHEMES = ("gs", "s3", "az")
#: Spec 1.3's Azure Blob endpoint: ``https://ACCOUNT`` + this + ``/CONTAINER/...``
AZURE_HOST = ".blob.core.windows.net"
AZURE_HTTPS_FORM = f"https://ACCOUNT{AZURE_HOST}/CONTAINER/..."
#: What a URI may start with; ``file://`` is a local path.
URI_FORMS = (
    f"gs://BUCKET/..., s3://BUCKET/..., az://CONTAINER/..., {AZURE_HTTPS_FORM} or a local path"
)
#: Azure storage account names: 3 to 24 lower-case letters and digits
_AZURE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
#: ``name:`` at the start: a scheme, whatever follows (``gs:/b``, ``gs:b``, ``https://``).
_SCHEME_LIKE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
#: Each cloud's bucket (container) naming rules: the characters it allows, the ones it
#: also allows inside a name, and the longest name. GCS: cloud.google.com/storage/docs/
#: buckets#naming; S3: docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html;
#: Azure: learn.microsoft.com/rest/api/storageservices/naming-and-referencing-containers--
#: blobs--and-metadata. Their minimum of 3 characters is not enforced: the one-letter
#: buckets of the local test configs (``gs://b``) are folders under ``--local-root``.
_BUCKET_RULES = {
    "gs": ("lower-case letters, digits, '-', '_' and '.'", re.compile(r"^[a-z0-9._-]+$"), 63),
    "s3": ("lower-case letters, digits, '-' and '.'", re.compile(r"^[a-z0-9.-]+$"), 63),
    "az": ("lower-case letters, digits and single '-'", re.compile(r"^[a-z0-9-]+$"), 63),
}
_CLOUD_NAMES = {"gs": "GCS bucket", "s3": "S3 bucket", "az": "Azure container"}
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
#: S3 reserves these prefixes and suffixes for its own kinds of bucket
_S3_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
#: GCS refuses "goog" at the start and "google" (or a look-alike) anywhere
_GOOGLE = re.compile(r"g[o0][o0]g[l1]e")
#: Azure's special containers
_AZURE_SPECIAL = ("$root", "$web", "$logs")
#: Common misspellings of a scheme -> the one meant.
_SCHEME_ALIASES = {
    "gcs": "gs",
    "google": "gs",
    "gs": "gs",
    "aws": "s3",
    "s3a": "s3",
    "s3n": "s3",
    "s3": "s3",
    "azure": "az",
    "abfs": "az",
    "abfss": "az",
    "wasb": "az",
    "wasbs": "az",
    "az": "az",
}


@dataclass(frozen=True)
class UriProblem:
    """Why a URI is refused: ``message``, what would be valid, and the likely intent."""

    message: str
    expected: str
    suggestion: str | None = None


def control_character(text: str) -> str | None:
    """The first control character in ``text`` (``Cc``, or a line/paragraph separator)."""
    for char in text:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            return char
    return None


def uri_problem(uri: str) -> UriProblem | None:
    """What is wrong with ``uri`` as a store location, or None when :func:`parse_uri`
    takes it. Local paths are checked for control characters only (``..`` in a local
    path is the config's business: ``verify ../out`` is fine)."""
    char = control_character(uri)
    if char is not None:
        return UriProblem(
            f"a location must not hold a control character ({char!r})",
            "printable characters only (no NUL, newline, CR, tab...)",
        )
    scheme, sep, rest = uri.partition("://")
    if not sep:
        match = _SCHEME_LIKE.match(uri)
        if match is None:
            return None
        scheme, rest = match.group(1), uri[match.end() :].lstrip("/")
        meant = _SCHEME_ALIASES.get(scheme.lower())
        return UriProblem(
            f"{scheme}: is not followed by '//': not a URI, and not taken as a local path",
            URI_FORMS + " (a local path does not start with NAME:)",
            f"{meant}://{rest}" if meant else None,
        )
    if scheme == "file":
        if not rest:
            return UriProblem("file:// names no path", "file:///PATH or a local path")
        return None
    if scheme.lower() in ("https", "http"):
        return _web_problem(scheme, rest)
    if scheme not in CLOUD_SCHEMES:
        meant = _SCHEME_ALIASES.get(scheme.lower())
        case = " (schemes are lower-case)" if scheme.lower() in CLOUD_SCHEMES else ""
        return UriProblem(
            "unsupported storage scheme" + case,
            URI_FORMS,
            f"{meant}://{rest}" if meant else None,
        )
    bucket, slash, key = rest.partition("/")
    if not bucket:
        return UriProblem("the URI names no bucket", f"{scheme}://BUCKET/...")
    problem = bucket_problem(scheme, bucket)
    if problem is not None:
        tidy = _tidy_bucket(scheme, bucket)
        return UriProblem(
            f"not a valid {_CLOUD_NAMES[scheme]} name: {bucket!r} ({problem})",
            _bucket_forms(scheme),
            f"{scheme}://{tidy}{slash}{key}" if tidy else None,
        )
    segments = key.split("/")
    if key.endswith("/"):
        segments.pop()  # a folder's trailing '/'
    kept = [s for s in segments if s not in ("", ".")]
    tidy = f"{scheme}://{bucket}/" + "/".join(kept) + ("/" if kept and key.endswith("/") else "")
    if key and "" in segments:
        return UriProblem(
            "empty path segment ('//')",
            f"{scheme}://BUCKET/a/b/ with one '/' between names",
            tidy if ".." not in kept else None,
        )
    dots = [s for s in key.replace("\\", "/").split("/") if s in (".", "..")]
    if dots:
        return UriProblem(
            f"a {dots[0]!r} path segment",
            "folder names only: an object store keeps '.' and '..' as names, a local "
            "folder (--local-root) resolves them",
            tidy if dots[0] == "." and ".." not in kept else None,
        )
    return None


def _web_problem(scheme: str, rest: str) -> UriProblem | None:
    """An ``https://`` URI is a store only as spec 1.3's Azure Blob URL; its container
    and path are held to the ``az://`` rules."""
    host, slash, path = rest.partition("/")
    if not host.lower().endswith(AZURE_HOST):
        return UriProblem(
            f"{scheme}://{host}/ is not a storage location: the only web address taken is "
            "an Azure Blob URL",
            URI_FORMS,
        )
    account = host[: -len(AZURE_HOST)]
    meant = f"https://{host.lower()}{slash}{path}"
    if scheme != "https" or host != host.lower():
        why = "schemes and host names are lower-case" if scheme.lower() == "https" else ""
        return UriProblem(why or f"{scheme}:// is not Azure Blob's scheme", AZURE_HTTPS_FORM, meant)
    if not _AZURE_ACCOUNT.match(account):
        return UriProblem(
            f"not a valid Azure storage account name: {account!r}",
            f"3 to 24 lower-case letters and digits before {AZURE_HOST}",
        )
    if "?" in path or "#" in path:
        return UriProblem(
            "a query or fragment in an Azure URL (a SAS token is a secret: not in the file)",
            f"{AZURE_HTTPS_FORM} without '?', the credentials from the environment "
            "(AZURE_STORAGE_CONNECTION_STRING, ...)",
            f"https://{host}/{path.partition('?')[0].partition('#')[0]}",
        )
    if not path.partition("/")[0]:
        return UriProblem("the URI names no container", AZURE_HTTPS_FORM)
    inner = uri_problem("az://" + path)
    if inner is None:
        return None
    suggestion = inner.suggestion
    if suggestion is not None:
        suggestion = f"https://{host}/" + suggestion.removeprefix("az://")
    return UriProblem(inner.message, inner.expected, suggestion)


def _bucket_forms(scheme: str) -> str:
    allowed, _, longest = _BUCKET_RULES[scheme]
    return f"{allowed}, starting and ending with a letter or digit, at most {longest} characters"


def bucket_problem(scheme: str, bucket: str) -> str | None:
    """Why ``scheme``'s cloud (``gs``, ``s3``, ``az``) refuses the bucket or container
    name ``bucket``, or None."""
    _, pattern, longest = _BUCKET_RULES[scheme]
    if scheme == "az" and bucket in _AZURE_SPECIAL:
        return None
    bad = sorted({c for c in bucket if not pattern.match(c)})
    if bad:
        upper = [c for c in bad if c.isupper()]
        named = [repr(c) for c in bad if not c.isupper()] + (["upper case"] if upper else [])
        return "not allowed: " + ", ".join(named)
    if not (bucket[0].isalnum() and bucket[-1].isalnum()):
        return "it must start and end with a letter or digit"
    parts = bucket.split(".")
    if scheme == "gs" and len(parts) > 1:
        if len(bucket) > 222 or any(len(p) > longest for p in parts):
            return f"a dotted name is at most 222 long, each part at most {longest}"
    elif len(bucket) > longest:
        return f"it is {len(bucket)} characters long, more than {longest}"
    if _IP_ADDRESS.match(bucket):
        return "it must not look like an IP address"
    for twice in ("..", "--" if scheme == "az" else ".."):
        if twice in bucket:
            return f"it must not hold {twice!r}"
    if scheme == "gs" and (bucket.startswith("goog") or _GOOGLE.search(bucket)):
        return "GCS refuses names starting with 'goog' or holding 'google'"
    if scheme == "s3" and (bucket.startswith(_S3_PREFIXES) or bucket.endswith(_S3_SUFFIXES)):
        return "S3 reserves its prefix or suffix for other kinds of bucket"
    return None


def _tidy_bucket(scheme: str, bucket: str) -> str | None:
    """The valid name nearest ``bucket``: lower case, each run of refused characters one
    ``-``, no ``-`` or ``.`` at the ends; None when that is not valid either."""
    _, pattern, _ = _BUCKET_RULES[scheme]
    out = "".join(c if pattern.match(c) else "-" for c in bucket.lower())
    out = re.sub(r"-{2,}", "-", re.sub(r"\.{2,}", ".", out)).strip("-._")
    return out if out and bucket_problem(scheme, out) is None else None


@dataclass(frozen=True)
class Location:
    """A parsed URI: ``scheme`` is gs|s3|az|file; for ``file`` the bucket is the
    folder that acts as the store root and ``key`` is empty. ``account`` is the Azure
    storage account an ``https://`` URI names (``None``: the credentials' account)."""

    scheme: str
    bucket: str
    key: str
    account: str | None = None

    @property
    def uri(self) -> str:
        if self.scheme == "file":
            return str(Path(self.bucket) / self.key) if self.key else self.bucket
        if self.account is not None:
            return f"https://{self.account}{AZURE_HOST}/{self.bucket}/{self.key}"
        return f"{self.scheme}://{self.bucket}/{self.key}"


def parse_uri(uri: str) -> Location:
    """Split a URI into scheme, bucket and key (keys never start with ``/``).

    Raises ``InvalidArgument`` for what :func:`uri_problem` refuses."""
    problem = uri_problem(uri)
    if problem is not None:
        hint = f"; did you mean {problem.suggestion!r}?" if problem.suggestion else ""
        raise InvalidArgument(f"{problem.message} in {uri!r}; expected {problem.expected}{hint}")
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return Location("file", str(Path(uri)), "")
    if scheme == "file":
        return Location("file", str(Path(rest)), "")
    if scheme == "https":  # spec 1.3's Azure Blob URL (uri_problem took no other)
        host, _, rest = rest.partition("/")
        bucket, _, key = rest.partition("/")
        return Location("az", bucket, key, account=host[: -len(AZURE_HOST)])
    bucket, _, key = rest.partition("/")
    return Location(scheme, bucket, key)


def azure_account_problem(uri: str) -> str | None:
    """Why the Azure credentials at hand cannot reach the account an ``https://`` URI
    names (they name another one), or None; other URIs have no such problem."""
    if uri_problem(uri) is not None:
        return None  # reported as malformed
    loc = parse_uri(uri)
    if loc.account is None:
        return None
    from dpexport.storage.azure import account_problem

    return account_problem(loc.account)


def open_cloud_store(
    scheme: str, bucket: str, account: str | None = None, identity: Identity | None = None
) -> Store:
    """The cloud backend for ``scheme``, its SDK imported only now (a missing SDK is a
    UsageError naming the extra to install); ``account`` is an Azure URL's account;
    ``identity`` the principal whose credentials it uses (:mod:`dpexport.security.identity`)."""
    if scheme == "gs":
        from dpexport.storage.gcs import GCSStore

        return GCSStore(bucket, identity=identity)
    if scheme == "s3":
        from dpexport.storage.s3 import S3Store

        return S3Store(bucket, identity=identity)
    if scheme == "az":
        from dpexport.storage.azure import AzureStore

        return AzureStore(bucket, account=account, identity=identity)
    raise UsageError(f"no store for scheme {scheme!r}")


class StoreResolver:
    """Opens (and caches) the store behind each URI; a cloud store with the credentials
    of ``identity``'s principal when it names them for that cloud (CONTRACT §11)."""

    def __init__(
        self,
        local_root: Path | None = None,
        policy: RetryPolicy | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.local_root = Path(local_root) if local_root else None
        self.identity = identity
        #: spec 7.1's policy, the only retry layer of every cloud store call (the SDKs'
        #: own retries are off); the spec's defaults unless the config's is given
        self.policy = policy
        self._stores: dict[tuple[str, str, str | None], Store] = {}

    def store_for(self, loc: Location) -> Store:
        """One store per bucket (and Azure account a URL names). An Azure URL's account
        must be the one the credentials name, if they name one (checked here); under
        ``--local-root`` it is the folder of ``az://CONTAINER``, no credentials used."""
        account = loc.account if self.local_root is None else None
        if account is not None:
            from dpexport.storage.azure import account_problem

            problem = account_problem(account)
            if problem is not None:
                raise UsageError(f"{loc.uri}: {problem}")
        cache_key = (loc.scheme, loc.bucket, account)
        if cache_key not in self._stores:
            self._stores[cache_key] = self._open(loc)
        return self._stores[cache_key]

    def _open(self, loc: Location) -> Store:
        if loc.scheme == "file":
            return LocalStore(Path(loc.bucket), url=loc.bucket)
        if self.local_root is not None:
            root = self.local_root / loc.scheme / loc.bucket
            return LocalStore(root, url=f"{loc.scheme}://{loc.bucket}")
        from dpexport.reliability.retry import Retrier, RetryingStore, RetryPolicy

        retrier = Retrier(self.policy or RetryPolicy(), keep_history=False)
        store = open_cloud_store(loc.scheme, loc.bucket, loc.account, self.identity)
        return RetryingStore(store, retrier)

    def resolve(self, uri: str) -> tuple[Store, str]:
        """The store and the key inside it for a URI."""
        loc = parse_uri(uri)
        return self.store_for(loc), loc.key
