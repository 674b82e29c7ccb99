"""Logs as JSON lines, one object per event, with the request's correlation id.

``koshin serve`` installs this for koshin's own loggers and uvicorn's (``log_config``). uvicorn's access log is
off: its lines carry the raw path, and a path can hold a resident number. The access line is koshin's own
(service/api/observe.py), naming the route template (``/v1/residents/{number}``), never the values in it.
Nothing here logs a request body, a header value other than the correlation id, a PIN, a token or a secret.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

CORRELATION_HEADER = "x-request-id"
_correlation: ContextVar[str | None] = ContextVar("koshin_correlation_id", default=None)
_ACCEPTED = re.compile(r"[A-Za-z0-9._-]{8,64}")  # what a proxy's request id looks like; anything else: ours
# LogRecord attributes that are not an event's own fields
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


def correlation_id() -> str | None:
    return _correlation.get()


def bind_correlation(offered: str | None) -> str:
    """The request's correlation id: the caller's ``X-Request-ID`` when it looks like one, else a new one."""
    value = offered if offered is not None and _ACCEPTED.fullmatch(offered) else str(uuid.uuid4())
    _correlation.set(value)
    return value


class JsonLines(logging.Formatter):
    """``{"at", "level", "logger", "message", "correlation_id", ...extra fields, "error"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (correlation := correlation_id()) is not None:
            event["correlation_id"] = correlation
        event.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            event["error"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False, default=str)


def uvicorn_options() -> dict[str, Any]:
    """What every ``uvicorn.run`` of koshin passes: JSON lines, no raw-path access log."""
    return {"log_config": log_config(), "access_log": False}


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``uvicorn.run(log_config=…)``: every line JSON on stderr."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonLines"}},
        "handlers": {"json": handler},
        "loggers": {
            "koshin": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
