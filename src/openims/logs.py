"""Log set-up (``OPENIMS_LOG_FORMAT``) and the context every line of a request or a job carries.

A leaf: it imports nothing of ours. The request middleware (``api.middleware.ObservedMiddleware``)
binds a ``LogContext`` for each request, authentication fills in who is calling, and the worker binds
one for each job it runs; every line logged meanwhile — in that task, or in a thread it hands work
to (anyio copies the context into the thread) — carries those fields in the JSON format.

Secrets never go into a line: nothing here logs bodies, headers or query strings, and the fields are
ids only. Threads started with ``threading.Thread`` (heartbeats) start with an empty context, so their
lines carry no job fields.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any, Literal

LogFormat = Literal["text", "json"]
# The format of before OPENIMS_LOG_FORMAT, still the default.
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(slots=True)
class LogContext:
    """Who and what a log line is about; None fields are left out of the line."""

    request_id: str | None = None
    account: str | None = None  # the caller's account (domain) id
    project: str | None = None  # the project the caller acts in
    user_id: str | None = None
    job_id: str | None = None
    job_type: str | None = None


# A mutable object, not separate variables: what authentication learns inside the request (possibly in
# a thread) shows on the request's access line, written by the middleware outside it.
_context: ContextVar[LogContext | None] = ContextVar("openims_log_context", default=None)


def current() -> LogContext | None:
    return _context.get()


@contextmanager
def bound(ctx: LogContext) -> Iterator[LogContext]:
    """Lines logged in this block (and in threads it hands work to) carry ``ctx``."""
    token = _context.set(ctx)
    try:
        yield ctx
    finally:
        _context.reset(token)


def note_caller(*, user_id: str, account: str, project: str | None) -> None:
    """Record the authenticated caller on the current request's context (nothing outside a request)."""
    ctx = _context.get()
    if ctx is not None:
        ctx.user_id, ctx.account, ctx.project = user_id, account, project


_FIELDS = tuple(f.name for f in fields(LogContext))


def _context_fields() -> dict[str, str]:
    ctx = _context.get()
    if ctx is None:
        return {}
    # Not dataclasses.asdict: it deep-copies, and this runs for every line (about 50 µs a request).
    return {name: value for name in _FIELDS if (value := getattr(ctx, name)) is not None}


class TextFormatter(logging.Formatter):
    """The format of before, with the bound context appended (``request_id=… user_id=…``, ``job_id=…``)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        # logging's own format (local time, milliseconds after a comma), with the strftime done once a
        # second rather than for every line: the access log writes one per request.
        second = int(record.created)
        if second != self._second[0]:
            self._second = (second, time.strftime(self.default_time_format, self.converter(second)))
        return f"{self._second[1]},{int(record.msecs):03d}"

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        fields = _context_fields()
        return text + "".join(f" {k}={v}" for k, v in fields.items()) if fields else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the bound context, the record's
    ``fields`` (``log.info(..., extra={"fields": {...}})``) and any exception's traceback."""

    def __init__(self) -> None:
        super().__init__()
        self._second: tuple[int, str] = (-1, "")

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second[0]:  # the date and time once a second (one line per request)
            self._second = (second, dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        line: dict[str, Any] = {
            "time": f"{self._second[1]}.{int(record.msecs):03d}+00:00",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_context_fields())
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure(fmt: LogFormat, level: int = logging.INFO) -> None:
    """Every logger of the process (uvicorn's too, which ``serve`` leaves unconfigured) to stderr in ``fmt``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # No line of ours names its thread, process or source line: not looking them up for every record is
    # the logging HOWTO's own advice ("Optimization"), and the access log writes a line per request.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    # Warnings become log lines, so that JSON output stays one object per line.
    logging.captureWarnings(True)
