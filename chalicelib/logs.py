"""Structured JSON log lines with job context on every line.

One JSON object per line is what CloudWatch Logs Insights queries best; the
context (job id, pipeline, table) is bound per use case so every line of a job
carries it without threading it through every call.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})
_logger = logging.getLogger("redshift_loader")
if not _logger.handlers:
    _handler = logging.StreamHandler(sys.stdout)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    _logger.addHandler(_handler)
    _logger.propagate = False
_logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add fields to every log line emitted inside the block.

    An exception that leaves the block takes the fields with it: a line logged while it is being
    handled outside (the handler reporting a job message that failed) carries them too.
    """
    context = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(context)
    try:
        yield
    except BaseException as exc:
        if _CONTEXT_ATTR not in getattr(exc, "__dict__", {}):  # the innermost block knows the most
            with contextlib.suppress(AttributeError, TypeError):
                setattr(exc, _CONTEXT_ATTR, context)
        raise
    finally:
        _context.reset(token)


_CONTEXT_ATTR = "_log_context"


def _handled_context() -> dict[str, Any]:
    """The bound fields of the exception being handled (or of the one it was raised while handling)."""
    exc: BaseException | None = sys.exc_info()[1]
    for _ in range(8):  # a short walk: a failure while handling a failure is as deep as it gets
        if exc is None:
            break
        context = getattr(exc, _CONTEXT_ATTR, None)
        if isinstance(context, dict):
            return context
        exc = exc.__context__
    return {}


def _emit(level: int, event: str, fields: dict[str, Any]) -> None:
    if not _logger.isEnabledFor(level):
        return
    record = {"time": round(time.time(), 3), "level": logging.getLevelName(level), "event": event,
              **_handled_context(), **_context.get(), **fields}
    line = json.dumps(record, default=str, ensure_ascii=False)
    if not line.isascii():
        try:
            line.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (from a JSON \\ud800 escape): escape it, keep the line
            line = json.dumps(record, default=str, ensure_ascii=True)
    _logger.log(level, line)


def info(event: str, **fields: Any) -> None:
    _emit(logging.INFO, event, fields)


def warning(event: str, **fields: Any) -> None:
    _emit(logging.WARNING, event, fields)


def error(event: str, **fields: Any) -> None:
    _emit(logging.ERROR, event, fields)


def debug(event: str, **fields: Any) -> None:
    _emit(logging.DEBUG, event, fields)
