"""How statements ended, read for people and for the retry policy (pure)."""

from __future__ import annotations

import re

from chalicelib.jobs import Job, LoadError, is_retryable_error, retry_delay
from chalicelib.ports import StatementInfo

_TRANSIENT_MARKERS = ("Throttl", "TooManyRequests", "ActiveStatementsExceeded", "ActiveSessionsExceeded",
                      "InternalServer", "ServiceUnavailable", "EndpointConnectionError", "ConnectionClosed",
                      "ReadTimeout", "ConnectTimeout", "ProvisionedThroughputExceeded", "RequestLimitExceeded")


def is_transient(exc: BaseException) -> bool:
    """Worth trying again later: throttling, capacity, 5xx, network (not bad requests or bad config)."""
    text = f"{type(exc).__name__}: {exc}"
    return any(marker in text for marker in _TRANSIENT_MARKERS) or is_retryable_error(text)


def requeue_delay(job: Job) -> int:
    """Seconds before a re-queued job's message comes back.

    0 for a follow-up chain's next step (no error), the retry backoff after a failure."""
    return 0 if job.error is None else retry_delay(job.attempt - 1)


def first_error(info: StatementInfo) -> str:
    for sub in info.sub_statements:
        if sub.status == "FAILED" and sub.error:
            return sub.error
    return info.error or f"statement {info.id} ended {info.status} without an error message"


_VALUE_IN_MESSAGE = re.compile(r"Value '((?:[^']|'')*)'|: \"((?:[^\"]|\"\")*)\"\s*$")


def load_error_from_row(row: dict[str, object]) -> LoadError:
    """A row of the load error views; without a raw value column the value is read from the message."""
    reason = str(row.get("error_message") or row.get("err_reason") or "").strip()
    value = row.get("raw_field_value")
    if value is None:
        found = _VALUE_IN_MESSAGE.search(reason)
        value = (found.group(1) if found.group(1) is not None else found.group(2)) if found else ""
    return LoadError(file=str(row.get("file_name") or row.get("filename") or "").strip(),
                     line=_int_or_none(row.get("line_number")),
                     column=str(row.get("column_name") or row.get("colname") or "").strip(),
                     value=str(value).strip(), reason=reason,
                     code=_int_or_none(row.get("error_code") or row.get("err_code")))


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
