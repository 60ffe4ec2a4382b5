"""What code running in a replica can ask about where it runs, and the current request id."""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["ReplicaContext", "get_replica_context"]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("serve_request_id", default="")

_current: ReplicaContext | None = None
_factory_installed = False


@dataclass
class ReplicaContext:
    """The replica this code runs in: its application, deployment, id and user object."""

    app_name: str
    deployment: str
    replica_id: str
    servable_object: Any

    @property
    def replica_tag(self) -> str:
        return self.replica_id


def set_replica_context(context: ReplicaContext) -> None:
    global _current
    _current = context


def get_replica_context() -> ReplicaContext:
    """The context of the replica this is called in (``RuntimeError`` elsewhere)."""
    if _current is None:
        raise RuntimeError("serve.get_replica_context() works only inside a replica.")
    return _current


def install_log_record_factory() -> None:
    """Give every log record made in a replica ``request_id``, ``deployment`` and ``replica``.

    A record made while a request runs carries its id, so a format such as
    ``%(request_id)s %(message)s`` ties a line to the request that printed it.
    """
    global _factory_installed
    if _factory_installed:
        return
    _factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id.get()
        if _current is not None:
            record.deployment = _current.deployment
            record.replica = _current.replica_id
        return record

    logging.setLogRecordFactory(factory)
