"""The two log formats and the context they carry (openims.logs)."""

from __future__ import annotations

import json
import logging
import threading

from openims import logs


def _record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("openims.test", logging.WARNING, __file__, 1, message, args or ("world",), None)
    for k, v in extra.items():
        setattr(record, k, v)
    return record


def test_json_line_has_the_fixed_fields() -> None:
    line = json.loads(logs.JsonFormatter().format(_record()))
    assert line["message"] == "hello world" and line["level"] == "WARNING" and line["logger"] == "openims.test"
    assert line["time"].endswith("+00:00") and "T" in line["time"]
    assert "request_id" not in line and "job_id" not in line


def test_json_line_carries_the_bound_context_and_fields() -> None:
    with logs.bound(logs.LogContext(request_id="r1")):
        logs.note_caller(user_id="u1", account="d1", project="p1")
        line = json.loads(logs.JsonFormatter().format(_record(fields={"route": "/v2/images/{image_id}"})))
    assert line["request_id"] == "r1" and line["user_id"] == "u1" and line["account"] == "d1"
    assert line["project"] == "p1" and line["route"] == "/v2/images/{image_id}"
    # Unbound again after the block; noting a caller outside a request does nothing.
    logs.note_caller(user_id="u2", account="d2", project=None)
    assert logs.current() is None


def test_json_line_keeps_an_exception_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record(exc_info=sys.exc_info())
    out = logs.JsonFormatter().format(record)
    assert "\n" not in out
    assert "ValueError: boom" in json.loads(out)["exception"]


def test_text_line_is_the_classic_format_with_the_context_appended() -> None:
    formatter = logs.TextFormatter()
    assert formatter.format(_record()).endswith(" WARNING openims.test: hello world")
    with logs.bound(logs.LogContext(job_id="j1", job_type="imsImportImageJob")):
        assert formatter.format(_record()).endswith("hello world job_id=j1 job_type=imsImportImageJob")


def test_the_context_of_one_thread_is_not_another_threads() -> None:
    seen: list[logs.LogContext | None] = []
    with logs.bound(logs.LogContext(job_id="j1")):
        t = threading.Thread(target=lambda: seen.append(logs.current()))
        t.start()
        t.join()
    assert seen == [None]


def test_times_are_formatted_as_logging_and_iso_8601_say_across_seconds() -> None:
    # The formatters keep the date and time of the last second; a line in the next second gets its own.
    import datetime as dt

    text, as_json, standard = logs.TextFormatter(), logs.JsonFormatter(), logging.Formatter(logs.TEXT_FORMAT)
    for created in (1_700_000_000.0, 1_700_000_000.9996, 1_700_000_001.0004, 1_700_000_001.5, 1_600_000_000.25):
        record = _record()
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        assert text.format(record) == standard.format(record)
        iso = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
        assert json.loads(as_json.format(record))["time"] == iso
