"""S3 side of COPY: which objects a COPY reads, and streaming, decompressing readers.

Redshift semantics: a COPY path without MANIFEST is a key *prefix* (a recursive listing:
`data/sales` also matches `data/sales_old/x.csv` and `data/salesman.csv`); with MANIFEST
it names one JSON object listing the files, where a missing `mandatory` file fails the
load and a missing optional one is skipped. Either way, no file at all is an error.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from devstack.redshift.contracts import RedshiftError

try:  # ISA-L's gunzip is 2-3x zlib's, and COPY of gzipped files spends most of its own CPU there
    from isal import igzip as _gzip
    from isal.isal_zlib import error as _isal_error
except ImportError:  # pragma: no cover - isal is in requirements-dev.txt; plain gzip still works
    _gzip = gzip  # type: ignore[assignment]
    _isal_error = zlib.error  # type: ignore[misc]

# What a damaged or mislabelled compressed file raises while it is read.
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error, gzip.BadGzipFile, _isal_error)

MAX_MANIFEST_BYTES = 64 * 1024 * 1024


@dataclass
class S3Object:
    bucket: str
    key: str
    size: int = -1            # from the listing, or from the GET for manifest entries
    mandatory: bool = True    # a missing optional manifest entry is skipped
    found: bool = False       # set when the object was opened

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def split_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise RedshiftError(f"ERROR: invalid S3 path {url!r}: expected s3://bucket/key")
    bucket, key = url[5:].split("/", 1)
    return bucket, key


def _client_error_code(exc: BaseException) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))


def list_prefix(s3: Any, url: str) -> list[S3Object]:
    bucket, prefix = split_url(url)
    found: list[S3Object] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["Key"].endswith("/") and obj["Size"] == 0:
                    continue  # a "folder" marker, not data
                found.append(S3Object(bucket, obj["Key"], int(obj["Size"])))
    except Exception as exc:
        if _client_error_code(exc) == "NoSuchBucket":
            raise RedshiftError(f"ERROR: S3ServiceException:The specified bucket does not exist, "
                                f"Bucket {bucket!r}") from None
        raise
    if not found:
        raise RedshiftError(f"ERROR: The specified S3 prefix '{prefix}' does not exist (bucket {bucket})")
    return sorted(found, key=lambda o: o.key)


def read_manifest(s3: Any, url: str) -> list[S3Object]:
    bucket, key = split_url(url)
    if not key or key.endswith("/"):
        raise RedshiftError("ERROR: COPY with MANIFEST parameter requires full path of an S3 object.", code=8001)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_MANIFEST_BYTES + 1)
    except Exception as exc:
        if _client_error_code(exc) in ("NoSuchKey", "NoSuchBucket", "404"):
            raise RedshiftError(f"ERROR: Manifest file {url} does not exist "
                                "(S3ServiceException: The specified key does not exist)") from None
        raise
    try:
        entries = json.loads(body)["entries"]
        if not isinstance(entries, list):
            raise TypeError("entries is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise RedshiftError(f"ERROR: Manifest file {url} is not valid JSON with an \"entries\" list: {exc}") from None
    objects: list[S3Object] = []
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            raise RedshiftError(f"ERROR: Manifest file {url}: entry {n} has no \"url\"")
        entry_bucket, entry_key = split_url(entry["url"])
        # No HEAD per entry: a missing file shows up when COPY opens it (half the S3 calls).
        objects.append(S3Object(entry_bucket, entry_key, mandatory=entry.get("mandatory") is True))
    if not objects:
        raise RedshiftError(f"ERROR: Manifest file {url} lists no files")
    return objects


def check_found(objects: list[S3Object], url: str) -> None:
    """After a load from a manifest: at least one listed file must have existed."""
    if objects and not any(o.found for o in objects):
        raise RedshiftError(f"ERROR: Manifest file {url} lists no file that exists")


def resolve_sources(s3: Any, url: str, manifest: bool) -> list[S3Object]:
    return read_manifest(s3, url) if manifest else list_prefix(s3, url)


class _Readable(io.RawIOBase):
    """Adapts botocore's StreamingBody to the io stack (BufferedReader, GzipFile, TextIOWrapper)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def open_object(s3: Any, obj: S3Object, compression: str | None) -> IO[bytes] | None:
    """A streaming, decompressed byte reader over one object (nothing is held whole in memory);
    None for a missing optional manifest entry."""
    try:
        response = s3.get_object(Bucket=obj.bucket, Key=obj.key)
    except Exception as exc:
        if _client_error_code(exc) in ("NoSuchKey", "NoSuchBucket", "404"):
            if not obj.mandatory:
                return None
            raise RedshiftError(f"ERROR: S3ServiceException:The specified key does not exist, {obj.url} "
                                "(a mandatory file of the load)") from None
        raise
    body = response["Body"]
    obj.size, obj.found = int(response.get("ContentLength", obj.size)), True
    raw: IO[bytes] = io.BufferedReader(_Readable(body), buffer_size=1 << 20)
    if compression == "GZIP":
        return _gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if compression == "BZIP2":
        return bz2.BZ2File(raw, mode="rb")  # type: ignore[return-value]
    if compression == "ZSTD":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)  # type: ignore[return-value]
    return raw


def read_whole(s3: Any, url: str, limit: int = MAX_MANIFEST_BYTES) -> bytes:
    """A small object read in full (a jsonpaths file)."""
    bucket, key = split_url(url)
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read(limit))
    except Exception as exc:
        if _client_error_code(exc) in ("NoSuchKey", "NoSuchBucket", "404"):
            raise RedshiftError(f"ERROR: S3ServiceException:The specified key does not exist, {url}") from None
        raise


def iter_chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk
