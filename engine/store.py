"""Warehouses on S3 (``--warehouse s3://bucket/prefix``): where the objects are, and every call to them.

An S3 warehouse has the layout of a local one under its prefix (``evalhouse.json``,
``tables/<table>/``, ``versions/<n>.json``) plus ``claims/<n>.json`` (see engine/commit.py). It
is worked on through a local folder, ``$EVALHOUSE_CACHE`` (default ``~/.cache/evalhouse``)
``/s3/<bucket>/<prefix>/``, marked by its ``.evalhouse-s3.json``: DuckDB cannot read ``s3://``
without its httpfs extension, so the live Parquet files are fetched into it (Delta files are never
rewritten, so a fetched file stays right), and a writer stages its new files there before
uploading them. ``Warehouse.root`` is that folder, so every module that reads files reads local
ones; the modules that read and write the store itself (versions, tables, commit) ask
:func:`location` whether a root stands for an S3 warehouse and go through the functions here.

Credentials and the endpoint come from the standard AWS environment variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` or
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``), read
here and passed explicitly to delta-rs and obstore, so that both libraries use the same settings
whatever each one's own reading of the environment (``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``
against ``AWS_ENDPOINT_URL_S3``, a plain-http endpoint).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalhouse.errors import WarehouseError

SCHEME = "s3://"
# The file in a local working folder that names the S3 warehouse it stands for.
MARKER = ".evalhouse-s3.json"
# A bucket name as S3 allows it (3-63 lower-case letters, digits, dots and hyphens).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_URL_UNSAFE = set("[]^|%\\#?")
HINT = "check the AWS_* environment variables (credentials, AWS_ENDPOINT_URL, AWS_REGION) and the bucket"


@dataclass(frozen=True)
class S3Location:
    """A warehouse's place on S3: a bucket and a key prefix (no leading or trailing slash)."""

    bucket: str
    prefix: str

    @property
    def url(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{SCHEME}{self.bucket}"


def is_url(text: str | os.PathLike[str]) -> bool:
    """Whether a ``--warehouse`` value names an S3 warehouse.

    >>> is_url("s3://bucket/wh"), is_url("./warehouse")
    (True, False)
    """
    return isinstance(text, str) and text.lower().startswith(SCHEME)


def parse_url(url: str) -> S3Location:
    """The bucket and prefix of ``s3://bucket/prefix``.

    >>> parse_url("s3://evals/team/wh/")
    S3Location(bucket='evals', prefix='team/wh')
    >>> parse_url("s3://evals/a%41")
    Traceback (most recent call last):
    evalhouse.errors.WarehouseError: s3://evals/a%41: the prefix has '%' in it, which delta-rs cannot open
    """
    bucket, _, prefix = url[len(SCHEME) :].partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.fullmatch(bucket):
        raise WarehouseError(f"{url}: {bucket!r} is not an S3 bucket name", hint="use s3://bucket/prefix")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise WarehouseError(f"{url}: the prefix has an empty, '.' or '..' part", hint="use s3://bucket/prefix")
    # delta-rs parses the table's URI as a URL (it would decode %41), as it does a local path.
    bad = sorted(set(prefix) & _URL_UNSAFE) or [c for c in prefix if not c.isprintable()][:1]
    if bad:
        raise WarehouseError(
            f"{url}: the prefix has {' '.join(repr(c) for c in bad)} in it, which delta-rs cannot open",
            hint="use a prefix of letters, digits and - _ . /",
        )
    return S3Location(bucket, prefix)


def cache_root(loc: S3Location) -> Path:
    """The local working folder of an S3 warehouse (see the module's docstring)."""
    base = Path(os.environ.get("EVALHOUSE_CACHE") or Path.home() / ".cache" / "evalhouse")
    return (base / "s3" / loc.bucket / (loc.prefix or "_")).resolve()


def working_folder(loc: S3Location) -> Path:
    """The local working folder of ``loc``, created and marked as standing for it."""
    root = cache_root(loc)
    marker = root / MARKER
    if location(root) != loc:
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{MARKER}.{secrets.token_hex(4)}.tmp"
        tmp.write_text(json.dumps({"url": loc.url}) + "\n", encoding="utf-8")
        os.replace(tmp, marker)
    return root


_known: dict[Path, S3Location] = {}


def location(root: Path) -> S3Location | None:
    """The S3 warehouse a local root stands for; None for a local warehouse."""
    if root in _known:
        return _known[root]
    try:
        url = json.loads((root / MARKER).read_text(encoding="utf-8"))["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    _known[root] = parse_url(url)
    return _known[root]


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def settings() -> dict[str, str]:
    """The AWS settings of the environment, by the names delta-rs and obstore both take."""
    found = {
        "aws_access_key_id": _env("AWS_ACCESS_KEY_ID"),
        "aws_secret_access_key": _env("AWS_SECRET_ACCESS_KEY"),
        "aws_session_token": _env("AWS_SESSION_TOKEN"),
        "aws_region": _env("AWS_REGION", "AWS_DEFAULT_REGION"),
        "aws_endpoint": _env("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        "aws_allow_http": _env("AWS_ALLOW_HTTP"),
    }
    if found["aws_allow_http"] is None and (found["aws_endpoint"] or "").startswith("http://"):
        # A plain-http endpoint (a server on the same host) is refused by both libraries otherwise.
        found["aws_allow_http"] = "true"
    return {k: v for k, v in found.items() if v is not None}


def delta_options() -> dict[str, str]:
    """storage_options for delta-rs: the AWS settings, and commits by conditional put.

    delta-rs 1.x commits a Delta log entry with a put-if-absent (S3's ``If-None-Match: *``) by
    default; saying so keeps a default change of the library from making concurrent commits unsafe.
    """
    return settings() | {"conditional_put": "etag"}


def _client(loc: S3Location) -> Any:
    from obstore.store import S3Store

    options = settings()
    config: dict[str, Any] = {k: v for k, v in options.items() if k != "aws_allow_http"}
    http = {"allow_http": options.get("aws_allow_http", "false").lower() == "true"}
    return S3Store(loc.bucket, prefix=loc.prefix or None, config=config, client_options=http)  # type: ignore[arg-type]


_clients: dict[tuple[S3Location, tuple[tuple[str, str], ...]], Any] = {}


def client(loc: S3Location) -> Any:
    """An obstore client for the warehouse's prefix (one per process and AWS settings)."""
    key = (loc, tuple(sorted(settings().items())))
    if key not in _clients:
        _clients[key] = _client(loc)
    return _clients[key]


@contextlib.contextmanager
def errors(loc: S3Location, doing: str) -> Iterator[None]:
    """Raise obstore's failures as WarehouseError naming the cause a user can act on."""
    from obstore import exceptions as ox

    try:
        yield
    except (ox.PermissionDeniedError, ox.UnauthenticatedError):
        raise WarehouseError(
            f"{loc.url}: access denied while {doing}: the credentials are wrong or lack permission", hint=HINT
        ) from None
    except ox.BaseError as exc:
        text = str(exc)
        if "NoSuchBucket" in text:
            raise WarehouseError(f"{loc.url}: the bucket {loc.bucket!r} does not exist", hint=HINT) from None
        if "InvalidAccessKeyId" in text or "SignatureDoesNotMatch" in text or "AccessDenied" in text:
            raise WarehouseError(
                f"{loc.url}: access denied while {doing}: the credentials are wrong", hint=HINT
            ) from None
        first = (text.strip().splitlines() or [type(exc).__name__])[0]
        if "aws_access_key_id" not in settings() and "169.254.169.254" in text:  # fell back to EC2's metadata
            raise WarehouseError(
                f"{loc.url}: no AWS credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set", hint=HINT
            ) from None
        if "error sending request" in text or "tcp connect error" in text:
            first = f"cannot reach the S3 endpoint ({settings().get('aws_endpoint', 'AWS')})"
        raise WarehouseError(f"{loc.url}: S3 failed while {doing}: {first}", hint=HINT) from None


def check(loc: S3Location) -> None:
    """Fail early, with the cause, when the bucket is missing or the credentials are refused."""
    import obstore

    with errors(loc, "listing the warehouse"):
        obstore.list_with_delimiter(client(loc), None)


def read(loc: S3Location, key: str) -> bytes | None:
    """The object at ``key`` (relative to the warehouse), or None if there is none."""
    import obstore
    from obstore.exceptions import NotFoundError

    with errors(loc, f"reading {key}"):
        try:
            return bytes(obstore.get(client(loc), key).bytes())
        except (NotFoundError, FileNotFoundError):
            return None


def names(loc: S3Location, folder: str) -> list[str]:
    """Names of the objects directly in ``folder`` (relative to the warehouse)."""
    import obstore

    folder = folder.rstrip("/")
    with errors(loc, f"listing {folder}"):
        found = obstore.list_with_delimiter(client(loc), folder + "/")
    # Some servers list an emptied folder as an object of the folder's own name: not a file in it.
    return sorted(o["path"].rsplit("/", 1)[-1] for o in found["objects"] if o["path"].rstrip("/") != folder)


def create(loc: S3Location, key: str, data: bytes) -> bool:
    """Create ``key`` if no object has that name (S3's conditional put); False if one has."""
    import obstore
    from obstore.exceptions import AlreadyExistsError, PreconditionError

    with errors(loc, f"writing {key}"):
        try:
            obstore.put(client(loc), key, data, mode="create")
        except (AlreadyExistsError, PreconditionError, FileExistsError):
            return False
    return True


def put(loc: S3Location, key: str, data: bytes) -> None:
    """Write ``key``, replacing any object of that name (one PUT: readers see old or new)."""
    import obstore

    with errors(loc, f"writing {key}"):
        obstore.put(client(loc), key, data)


def upload(loc: S3Location, path: Path, key: str) -> None:
    """Upload a local file to ``key`` (multipart for large files)."""
    import obstore

    with errors(loc, f"uploading {key}"):
        obstore.put(client(loc), key, path)


def fetch(loc: S3Location, key: str, path: Path, size: int | None = None) -> None:
    """Download ``key`` to ``path`` unless a file of that size is there already.

    Written beside and renamed, so a reader in another process never sees half a file. Raises
    FileNotFoundError when the object is gone.
    """
    import obstore
    from obstore.exceptions import NotFoundError

    if path.exists() and (size is None or path.stat().st_size == size):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    try:
        with errors(loc, f"downloading {key}"):
            try:
                result = obstore.get(client(loc), key)
            except (NotFoundError, FileNotFoundError):
                raise FileNotFoundError(key) from None
            with open(tmp, "wb") as f:
                for chunk in result:
                    f.write(chunk)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def delete(loc: S3Location, keys: list[str]) -> None:
    """Delete objects (a missing one is no error)."""
    import obstore

    if keys:
        with errors(loc, "deleting files"):
            obstore.delete(client(loc), keys)


def refuse(warehouse: str, command: str, why: str, instead: str) -> None:
    """Raise for a command that cannot work on an S3 warehouse (``why``), naming what does."""
    if is_url(warehouse):
        raise WarehouseError(f"`evalhouse {command}` does not work on an S3 warehouse ({warehouse}): {why}", instead)
