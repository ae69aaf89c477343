"""JSON-lines logging: one object per line, with the fields a record's outcome needs.

The function's format, and the one format of every tool's progress log (ops/, harness/, bench/,
layer/build.py, localstack/server.py): standard library only.
"""

import json
import logging
import sys
import time

LOGGER_NAME = "thumbnailer"


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object: time, level, message and its `fields` extra."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever sys.stdout is when a line is logged, not when the handler was made."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value):
        pass


def json_handler(stream=None) -> logging.StreamHandler:
    """A handler writing JSON lines to `stream` (default stderr): how the tools log their progress."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler


def get_logger(level: str = "INFO") -> logging.Logger:
    """Return the package logger, writing JSON lines to stdout (CloudWatch Logs on Lambda)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(h, _StdoutHandler) for h in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    # Lambda's runtime installs its own root handler; do not let lines appear twice.
    logger.propagate = False
    logger.setLevel(level)
    return logger


def log(logger: logging.Logger, level: int, message: str, **fields: object) -> None:
    """Log `message` with structured `fields` (bucket, key, outcome, sizes, duration...)."""
    logger.log(level, message, extra={"fields": fields})
