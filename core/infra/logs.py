"""One JSON object per line, the same in every process: time, level, process, event, context."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from core.infra.security import RedactionFilter, redact, redact_value

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, process_name: str):
        super().__init__()
        self.process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        # Time, level, process and logger name are ours; the message, the context (whose values and reprs can
        # carry secrets under any name: the whole structure) and the exception are redacted.
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "process": self.process_name,
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        context = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        if context:
            entry["context"] = redact_value(context)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = redact(record.exc_text)
        return json.dumps(entry, default=lambda obj: redact(str(obj)))


def setup_logging(process_name: str, level: str = "INFO", stream=None) -> None:
    """Route every logger (ours, Flask, Celery, gunicorn, werkzeug) through one redacting JSON handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(process_name))
    handler.addFilter(RedactionFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(os.environ.get("ARISTOBOT_LOG_LEVEL", level))
    for name in ("gunicorn.error", "gunicorn.access", "celery", "werkzeug", "flask.app"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    logging.getLogger("urllib3").setLevel("WARNING")
