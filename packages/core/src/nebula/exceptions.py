"""Errors Nebula raises to its users.

Every error derives from :class:`NebulaError`. An exception raised inside a task or actor
method comes back to the caller as an instance of *both* :class:`TaskError` and the
exception's own class, so ``except ValueError`` works on the caller's side while the remote
traceback stays visible in the message.

Tree::

    NebulaError
    ├── TaskError                  (+ the remote exception's own class)
    ├── ActorDiedError
    ├── WorkerCrashedError
    ├── NodeDiedError
    ├── ObjectLostError
    ├── GetTimeoutError            (also a TimeoutError)
    ├── TaskCancelledError
    ├── ObjectStoreFullError
    ├── RuntimeEnvSetupError
    └── PendingCallsLimitExceeded
"""

from __future__ import annotations

import copyreg
from typing import Any


class NebulaError(Exception):
    """Base class of every error Nebula raises."""


class TaskError(NebulaError):
    """A task or actor method raised an exception.

    ``cause`` is the original exception and ``traceback_str`` the remote traceback.
    Use :meth:`as_instanceof_cause` (done for you by ``nebula.get``) to get an error that is
    also an instance of the original exception class.
    """

    def __init__(
        self,
        function_name: str,
        traceback_str: str,
        cause: BaseException | None,
        pid: int | None = None,
        node_ip: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.pid = pid
        self.node_ip = node_ip
        # Not super(): in a dual class the next __init__ is the cause's, with its own signature.
        Exception.__init__(self, self._message())

    def _message(self) -> str:
        where = f" (pid={self.pid}, ip={self.node_ip})" if self.pid else ""
        return f"{self.function_name}(){where} raised an exception:\n{self.traceback_str}".rstrip()

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            TaskError,
            (self.function_name, self.traceback_str, self.cause, self.pid, self.node_ip),
        )

    def __str__(self) -> str:
        return self._message()

    def as_instanceof_cause(self) -> TaskError:
        """Return an error that is both a ``TaskError`` and an instance of the cause's class."""
        root = self.cause
        while isinstance(root, TaskError) and root.cause is not None:
            root = root.cause  # a task that failed on a failed task: the first cause counts
        cause_cls = type(root) if root is not None else None
        if cause_cls is None or issubclass(cause_cls, TaskError):
            return self
        if not _can_subclass(cause_cls):
            return self
        return _dual_error(self, cause_cls)


def _can_subclass(cls: type) -> bool:
    try:
        type("_Probe", (TaskError, cls), {})
    except TypeError:
        return False
    return True


_DUAL_CLASSES: dict[type, type] = {}


def _dual_error(error: TaskError, cause_cls: type[BaseException]) -> TaskError:
    dual_cls = _DUAL_CLASSES.get(cause_cls)
    if dual_cls is None:
        dual_cls = type(
            f"TaskError({cause_cls.__name__})",
            (TaskError, cause_cls),
            {
                "__init__": _dual_init,
                "__reduce__": TaskError.__reduce__,
                "__str__": TaskError.__str__,
                "__module__": cause_cls.__module__,
            },
        )
        _DUAL_CLASSES[cause_cls] = dual_cls
    dual: TaskError = dual_cls.__new__(dual_cls)  # type: ignore[call-overload]
    _dual_init(dual, error)
    return dual


def _dual_init(self: TaskError, error: TaskError) -> None:
    TaskError.__init__(
        self, error.function_name, error.traceback_str, error.cause, error.pid, error.node_ip
    )
    if error.cause is not None:
        # Keep the cause's attributes (errno, args...) readable on the dual error.
        try:
            self.__dict__.update(
                {k: v for k, v in vars(error.cause).items() if k not in self.__dict__}
            )
        except TypeError:
            pass
        self.args = error.cause.args


class ActorDiedError(NebulaError):
    """The actor is dead: it was killed, its process or node died, or ``__init__`` raised."""

    def __init__(self, message: str = "The actor died.", actor_id: str | None = None) -> None:
        self.actor_id = actor_id
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.actor_id))


class WorkerCrashedError(NebulaError):
    """The worker process running the task died before the task finished."""


class NodeDiedError(NebulaError):
    """The node running the task or holding the object died."""


class ObjectLostError(NebulaError):
    """The object's value is gone and cannot be rebuilt."""


class GetTimeoutError(NebulaError, TimeoutError):
    """``nebula.get`` did not get the values within its ``timeout``."""


class TaskCancelledError(NebulaError):
    """The task was cancelled with ``nebula.cancel`` before it could finish."""


class ObjectStoreFullError(NebulaError):
    """The object does not fit in the node's object store."""


class RuntimeEnvSetupError(NebulaError):
    """The task's runtime environment could not be set up."""


class PendingCallsLimitExceeded(NebulaError):
    """A caller has ``max_pending_calls`` unfinished calls to an actor and made another.

    Raised by ``handle.method.remote()`` at once (nothing is sent): back-pressure for a
    caller that produces calls faster than the actor serves them.
    """


def ensure_picklable_cause(cause: BaseException) -> BaseException | None:
    """Return ``cause`` if it survives a pickle round trip, else ``None``.

    An exception whose constructor cannot be replayed from ``args`` is rebuilt from its
    state instead; one that holds unpicklable state (locks, sockets) cannot travel, and the
    caller then gets the traceback text only.
    """
    if _round_trips(cause):
        return cause
    copyreg.pickle(type(cause), _reduce_by_state)
    return cause if _round_trips(cause) else None


def _round_trips(cause: BaseException) -> bool:
    import cloudpickle

    try:
        cloudpickle.loads(cloudpickle.dumps(cause))
    except Exception:
        return False
    return True


def _reduce_by_state(exc: BaseException) -> tuple[Any, ...]:
    return (_rebuild_by_state, (type(exc), exc.args, dict(vars(exc))))


def _rebuild_by_state(
    cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
) -> BaseException:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


__all__ = [
    "PendingCallsLimitExceeded",
    "ActorDiedError",
    "GetTimeoutError",
    "NebulaError",
    "NodeDiedError",
    "ObjectLostError",
    "ObjectStoreFullError",
    "RuntimeEnvSetupError",
    "TaskCancelledError",
    "TaskError",
    "WorkerCrashedError",
]
