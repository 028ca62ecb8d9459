"""The run a log line is about: every line written while a run executes carries its id.

`run_context(run_id)` marks the work on one run (a worker executing it, an export streaming
it); `RunIdFilter` copies the id onto each log record as `run_id` (empty outside a run), which
the JSON log format (`WARDEN_LOG_FORMAT=json`) writes as a field of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

current_run: ContextVar[int | None] = ContextVar("warden_run_id", default=None)


@contextmanager
def run_context(run_id: int | None) -> Iterator[None]:
    token = current_run.set(run_id)
    try:
        yield
    finally:
        current_run.reset(token)


class RunIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        run_id = current_run.get()
        record.run_id = run_id if run_id is not None else ""
        return True


# What a JSON log line holds: nothing a library attaches to its records besides (a request
# with its query string, a task's arguments) is written.
JSON_FIELDS = frozenset({"time", "level", "logger", "message", "run_id", "exc_info", "stack_info"})


def json_formatter(**options: Any) -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class WardenJsonFormatter(JsonFormatter):
        def add_fields(
            self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
        ) -> None:
            super().add_fields(log_data, record, message_dict)
            for name in [n for n in log_data if n not in JSON_FIELDS]:
                del log_data[name]

    return WardenJsonFormatter(**options)
