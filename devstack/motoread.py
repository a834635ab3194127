"""A short way in for the warehouse emulator's object reads (devstack only).

Under a burst, one moto process serves the files being put, their notifications, the routers'
queue traffic and COPY's reads of the same files: its interpreter lock is the burst's
bottleneck, and a GET through Flask and moto's dispatch costs it ~0.9 ms. A real warehouse's
S3 reads load nothing of ours. So a GET that the emulator marks with READ_HEADER, for a plain
stored object (no query, no range, no conditions, not archived), is answered here from moto's
backend: the object's bytes and length, ~0.1 ms. Anything else (a missing key or bucket, a
delete marker, an archived object) returns None and moto answers as always, errors included.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote

READ_HEADER = "x-devstack-object-read"
_ENVIRON_KEY = "HTTP_X_DEVSTACK_OBJECT_READ"
_CONDITIONS = ("HTTP_RANGE", "HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE",
               "HTTP_IF_UNMODIFIED_SINCE", "HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_CUSTOMER_ALGORITHM")


def object_read(environ: dict[str, Any]) -> tuple[bytes, str] | None:
    """(bytes, ETag) of the object a marked plain GET names, or None for moto to answer."""
    if environ.get(_ENVIRON_KEY) != "1" or environ.get("REQUEST_METHOD") != "GET" or environ.get("QUERY_STRING"):
        return None
    if any(environ.get(name) for name in _CONDITIONS):
        return None
    # The path as sent (moto's own reading of a key): "%2B" in a key arrives as "%252B".
    path = unquote((environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").split("?", 1)[0])
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket or not key:
        return None
    from moto.s3.models import ARCHIVE_STORAGE_CLASSES, FakeKey, s3_backends

    try:
        stored = s3_backends[_account(environ)]["aws"].get_object(bucket, key)
    except Exception:  # a missing bucket and the like: moto's own answer, with its error code
        return None
    if type(stored) is not FakeKey or stored.storage_class in ARCHIVE_STORAGE_CLASSES:
        return None
    return stored.value, stored.etag


def _account(environ: dict[str, Any]) -> str:
    """The account moto would serve this request as (moto's BaseResponse.get_current_account)."""
    from moto.core.responses import BaseResponse
    from moto.iam.models import get_account_id_from

    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
        return str(environ["HTTP_X_MOTO_ACCOUNT_ID"])
    match = BaseResponse.access_key_regex.search(environ.get("HTTP_AUTHORIZATION", ""))
    return str(get_account_id_from(match.group(1) if match else "AKIAEXAMPLE"))
