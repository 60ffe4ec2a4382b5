"""Errors nebula-serve raises to its users.

Tree (all below :class:`nebula.exceptions.NebulaError`)::

    ServeError
    ├── BackPressureError          a caller's queue for a deployment is full (HTTP 503)
    ├── RequestCancelledError      the request was cancelled (client gone, timeout, cancel())
    ├── DeploymentUnavailableError the deployment does not exist (any more)
    ├── ReplicaDiedError           the replica running the request died
    └── DeployFailedError          a deployment could not start its replicas

An exception raised by a deployment's code reaches the caller of ``handle.remote()`` as a
:class:`nebula.exceptions.TaskError` that is also an instance of the original class.
"""

from __future__ import annotations

from nebula.exceptions import NebulaError

__all__ = [
    "BackPressureError",
    "DeployFailedError",
    "DeploymentUnavailableError",
    "ReplicaDiedError",
    "RequestCancelledError",
    "ServeError",
]


class ServeError(NebulaError):
    """Base class of nebula-serve's own errors."""


class BackPressureError(ServeError):
    """More requests wait for a deployment than its ``max_queued_requests`` allows."""


class RequestCancelledError(ServeError):
    """The request was cancelled before it finished."""


class DeploymentUnavailableError(ServeError):
    """The deployment a handle points at does not exist."""


class ReplicaDiedError(ServeError):
    """The replica handling the request stopped before it answered."""


class DeployFailedError(ServeError):
    """An application's deployment failed to start; the message says why."""
