"""COPY's object reads from a local S3 (moto) as plain HTTP GETs.

boto3's get_object costs ~1 ms of client CPU per request (parameter validation, signing,
event hooks, response parsing): a 200-file COPY spent more in the client than moto spent
serving it. Against a plain-HTTP endpoint, which only a local S3 is, a GET needs none of
that: moto does not check signatures and the object's bytes are the response body. A
urllib3 GET costs ~0.27 ms. Everything else (listings, manifests' puts, UNLOAD's writes)
still goes through the boto3 client, and so does any endpoint over HTTPS. The reads carry
READ_HEADER, which devstack's own moto server answers without moto's dispatch (motoread.py);
any other S3 ignores it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from devstack.motoread import READ_HEADER
from devstack.redshift.awsclients import LOCAL_CREDENTIALS, unsigned_s3_authorization

_ERROR_CODE = re.compile(rb"<Code>([^<]+)</Code>")


class PlainGetS3:
    """A boto3 S3 client whose get_object is a plain GET (same answers, same ClientError codes)."""

    def __init__(self, client: Any, endpoint: str, region: str, max_connections: int = 50) -> None:
        import urllib3

        self._client = client
        self._endpoint = endpoint.rstrip("/")
        credentials = client._request_signer._credentials
        access_key = credentials.access_key if credentials is not None else LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"]
        self._headers = {"Authorization": unsigned_s3_authorization(access_key, region),
                         READ_HEADER: "1"}  # devstack's moto answers these reads first (devstack/motoread.py)
        retries = urllib3.Retry(total=4, backoff_factor=0.05, status_forcelist=(500, 502, 503, 504),
                                allowed_methods=frozenset({"GET"}), raise_on_status=False)
        self._pool = urllib3.PoolManager(maxsize=max_connections, retries=retries,
                                         timeout=urllib3.Timeout(connect=5, read=60))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, *, Bucket: str, Key: str, **extra: Any) -> dict[str, Any]:  # noqa: N803 - boto3's names
        if extra:  # ranges, versions, conditions: boto3 knows them all
            return self._client.get_object(Bucket=Bucket, Key=Key, **extra)
        url = f"{self._endpoint}/{quote(Bucket, safe='')}/{quote(Key, safe='/~')}"
        response = self._pool.request("GET", url, headers=self._headers, preload_content=False,
                                      decode_content=False)  # a gzip object stays gzip, as boto3 returns it
        if response.status != 200:
            body = response.read()
            response.release_conn()
            found = _ERROR_CODE.search(body)
            code = found.group(1).decode() if found else str(response.status)
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": code, "Message": f"GET s3://{Bucket}/{Key}: HTTP {response.status}"},
                               "ResponseMetadata": {"HTTPStatusCode": response.status}}, "GetObject")
        length = response.headers.get("Content-Length")
        return {"Body": _Body(response), "ContentLength": int(length) if length is not None else -1}


class _Body:
    """The response's stream as botocore's StreamingBody reads: its connection goes back to the pool
    once the body is read to the end."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._done = False

    def read(self, amt: int | None = None) -> bytes:
        data: bytes = self._response.read(amt)
        if not data or amt is None:
            self._finish()
        return data

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._response.release_conn()

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._response.close()  # left unread: the connection cannot be reused
