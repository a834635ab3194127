"""AWS X-Ray tracing when the stage turns it on, and nothing at all when it does not.

A stage with `"xray": true` in .chalice/config.json also sets `TRACING=xray` (a unit test keeps the
two together). Then, at cold start, `start()` patches boto3/botocore so every AWS call is a subsegment,
and `traced()` wraps each job's processing in a subsegment annotated with the job id and pipeline, so
a trace can be found by job (`annotation.job_id = "..."`) from a job record or a log line.

Otherwise aws-xray-sdk is never imported: importing it costs more than the rest of the app, and outside
Lambda it builds two X-Ray clients for its sampler. `traced()` is then an empty context manager.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from chalicelib import logs

ENV_VAR = "TRACING"
XRAY = "xray"

_recorder: Any = None  # the X-Ray recorder once start() has run; None means tracing is off


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Whether the stage asked for X-Ray tracing (the SDK's own AWS_XRAY_SDK_ENABLED=false still wins)."""
    env = os.environ if env is None else env
    return (env.get(ENV_VAR, "").strip().lower() == XRAY
            and env.get("AWS_XRAY_SDK_ENABLED", "true").strip().lower() != "false")


def start(recorder: Any = None) -> bool:
    """Patch boto3/botocore and keep the recorder, if tracing is wanted; True when tracing is on.

    Call once per cold start, before the first AWS call (patching is per class, so clients made
    earlier are traced too, but their first calls would not be). A test may pass its own recorder.
    """
    global _recorder
    if _recorder is not None:
        return True
    if recorder is None:
        if not wanted():
            return False
        from aws_xray_sdk.core import patch, xray_recorder

        patch(["boto3", "botocore"])
        recorder = xray_recorder
    _recorder = recorder
    return True


def stop() -> None:
    """Forget the recorder (tests). Patched clients stay patched; with no segment open they trace nothing."""
    global _recorder
    _recorder = None


def active() -> bool:
    return _recorder is not None


@contextlib.contextmanager
def traced(name: str, **annotations: str | int | float | bool | None) -> Iterator[None]:
    """A subsegment named `name` around the block, with the given annotations (None values left out).

    With tracing off this does nothing. Outside a traced invocation (no segment: devstack, a script)
    the SDK, told AWS_XRAY_CONTEXT_MISSING=IGNORE_ERROR by the stage config, hands back no subsegment.
    """
    recorder = _recorder
    if recorder is None:
        yield
        return
    with recorder.in_subsegment(name) as subsegment:
        if subsegment is not None:
            for key, value in annotations.items():
                if value is not None:
                    subsegment.put_annotation(key, value)
        yield


@contextlib.contextmanager
def job_scope(step: str, *, job_id: str, pipeline: str, table: str) -> Iterator[None]:
    """One job's processing: each log line inside carries job_id, pipeline and table, and with tracing
    on it is one subsegment (`step`, e.g. run_job) annotated with them, the AWS calls nested under it."""
    with logs.bound(job_id=job_id, pipeline=pipeline, table=table), \
            traced(step, job_id=job_id, pipeline=pipeline, table=table):
        yield
