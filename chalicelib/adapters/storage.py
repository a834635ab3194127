"""S3: manifests out, object metadata in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from chalicelib.adapters.aws import client, error_code
from chalicelib.jobs import FileRef


class S3Storage:
    def __init__(self, api: Any | None = None) -> None:
        self._api = api

    @property
    def api(self) -> Any:
        return self._api or client("s3")

    def put_text(self, bucket: str, key: str, body: str) -> None:
        self.api.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="application/json")

    def head(self, bucket: str, key: str) -> FileRef | None:
        try:
            h = self.api.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        version = h.get("VersionId")
        if not version or version == "null":
            version = str(h.get("ETag", "")).strip('"')
        return FileRef(bucket=bucket, key=key, version=version, size=int(h.get("ContentLength", 0)))

    def read_head(self, bucket: str, key: str, size: int) -> bytes:
        body = self.api.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{int(size) - 1}")["Body"]
        return body.read()

    def get_text(self, bucket: str, key: str) -> str | None:
        try:
            body = self.api.get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as exc:
            if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return body.read().decode("utf-8")

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        if not prefix:
            raise ValueError(f"refusing to delete a whole bucket ({bucket}): give a prefix")
        deleted = 0
        batch: list[dict[str, str]] = []
        for ref in self.list(bucket, prefix):
            batch.append({"Key": ref.key})
            if len(batch) == 1000:  # DeleteObjects takes at most 1,000 keys
                deleted += self._delete(bucket, batch)
                batch = []
        if batch:
            deleted += self._delete(bucket, batch)
        return deleted

    def _delete(self, bucket: str, keys: list[dict[str, str]]) -> int:
        response = self.api.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise RuntimeError(f"could not delete {len(errors)} object(s) from s3://{bucket}, e.g. "
                               f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}")
        return len(keys)

    def list(self, bucket: str, prefix: str) -> Iterator[FileRef]:
        for page in self.api.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield FileRef(bucket=bucket, key=obj["Key"], version=str(obj.get("ETag", "")).strip('"'),
                              size=int(obj.get("Size", 0)))
