"""A replica's logs: serve's records and one access line per request.

Each request the replica finishes is logged on ``nebula.serve.access`` as ::

    INFO 2026-12-03 07:01:18,123 app#Model app#Model#a1b2c3 5f3ec2 -- GET /items 200 1.3ms

(application and deployment, replica, request id, then method, route, status and latency;
``CALL method OK`` for handle calls), or as one JSON object per line with
``encoding="JSON"``. Lines go to the replica's own log (its worker's stderr, which
``nebula logs`` shows) or to a file per replica in ``logs_dir``.

Lines are gathered and written together, a tenth of a second at most after the first of
them: a busy replica makes a few writes a second, not one per request, and the process that
carries its log to files and drivers handles a few large batches.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import sys
from typing import IO, Any

from nebula.serve._context import ReplicaContext
from nebula.serve.config import LoggingConfig

ACCESS_LOGGER = "nebula.serve.access"
SERVE_LOGGER = "nebula.serve"

_TEXT = "%(levelname)s %(asctime)s %(tag)s %(replica)s %(request_id)s -- %(message)s"


_FLUSH_AFTER_S = 0.1
_FLUSH_LINES = 1000


class _BatchingHandler(logging.Handler):
    """Writes the lines gathered over a short while in one write."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__()
        self._stream = stream
        self._lines: list[str] = []
        atexit.register(self.flush)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        lines = self._lines
        lines.append(line)
        if len(lines) >= _FLUSH_LINES or record.levelno >= logging.ERROR:
            self.flush()
        elif len(lines) == 1:
            try:
                asyncio.get_running_loop().call_later(_FLUSH_AFTER_S, self.flush)
            except RuntimeError:
                self.flush()  # not on an event loop: write now

    def flush(self) -> None:
        lines = self._lines
        if not lines:
            return
        self._lines = []
        try:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            pass


class _JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "levelname": record.levelname,
            "asctime": self.formatTime(record),
            "deployment": getattr(record, "tag", ""),
            "replica": getattr(record, "replica", ""),
            "request_id": getattr(record, "request_id", ""),
            "message": record.getMessage(),
        }
        for key in ("method", "route", "status", "latency_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exc_text"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _Tagged(logging.Filter):
    """Gives each record the replica's tag (application#deployment) and id."""

    def __init__(self, context: ReplicaContext) -> None:
        super().__init__()
        self._tag = f"{context.app_name}#{context.deployment}"
        self._replica = context.replica_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.tag = self._tag
        record.replica = self._replica
        if not hasattr(record, "request_id"):
            record.request_id = ""
        return True


def configure(context: ReplicaContext, config: LoggingConfig | None) -> logging.Logger | None:
    """Set up the replica's loggers; returns the access logger, or None when it is off."""
    config = config or LoggingConfig()
    stream: IO[str] = sys.stderr
    if config.logs_dir is not None:
        os.makedirs(config.logs_dir, exist_ok=True)
        name = f"replica_{context.app_name}_{context.deployment}_{context.replica_id}.log"
        path = os.path.join(config.logs_dir, name.replace("#", "_").replace(os.sep, "_"))
        stream = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the process
    handler = _BatchingHandler(stream)
    handler.setFormatter(
        _JSONFormatter() if config.encoding == "JSON" else logging.Formatter(_TEXT)
    )
    handler.addFilter(_Tagged(context))
    level = config.log_level.upper() if isinstance(config.log_level, str) else config.log_level
    access = logging.getLogger(ACCESS_LOGGER)
    access.propagate = False
    serve = logging.getLogger(SERVE_LOGGER)
    for logger in (access, serve):
        for old in list(logger.handlers):
            if isinstance(old, _BatchingHandler):
                logger.removeHandler(old)
        logger.addHandler(handler)
        logger.setLevel(level)
    serve.propagate = False  # its records are written here, not twice
    if not config.enable_access_log or not access.isEnabledFor(logging.INFO):
        return None
    return access


def log_access(
    logger: logging.Logger,
    method: str,
    route: str,
    status: int | str,
    latency_s: float,
) -> None:
    latency_ms = round(latency_s * 1000, 1)
    logger.info(
        "%s %s %s %sms",
        method,
        route,
        status,
        latency_ms,
        extra={"method": method, "route": route, "status": status, "latency_ms": latency_ms},
    )
