"""Share a fixed set of actors among many calls, one outstanding call per actor.

Actors that hold something expensive (a model, a connection, a simulator) cannot be created
per task, so this spreads work over the ones that exist: a call goes to an idle actor, or
waits on the driver until one frees up, and results can be read back in submission order
or as they finish. Everything runs on the caller's thread; nothing happens in the
background, so submissions queued for a busy pool are sent while results are read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import nebula

A = TypeVar("A")
V = TypeVar("V")

# What the user's function returns: an ObjectRef, or a list of them for num_returns > 1.
Submission = Callable[[A, V], Any]

_TIMEOUT_MESSAGE = "Timed out waiting for result"


def _first_ref(future: Any) -> Any:
    return future[0] if isinstance(future, list) else future


def _key(future: Any) -> Any:
    """A dict key for what ``fn`` returned; a list of refs (num_returns > 1) is not hashable."""
    return tuple(future) if isinstance(future, list) else future


class ActorPool(Generic[A]):
    """Run ``fn(actor, value)`` calls over a fixed set of actors.

    ``fn`` must call one remote method and return its result reference, e.g.
    ``lambda actor, v: actor.double.remote(v)``.
    """

    def __init__(self, actors: Iterable[A]) -> None:
        self._idle: list[A] = list(actors)
        self._pending: deque[tuple[Submission[A, Any], Any]] = deque()
        # Each submitted call has an index in submission order; its future maps back to it.
        self._future_by_index: dict[int, Any] = {}
        self._call_by_key: dict[Any, tuple[int, A]] = {}
        self._next_task_index = 0
        self._next_return_index = 0

    def map(self, fn: Submission[A, V], values: Iterable[V]) -> Iterator[Any]:
        """Submit every value now and yield the results in the order of ``values``.

        Results of earlier submissions nobody read are discarded first, so they cannot be
        mistaken for this map's results.
        """
        self._discard_outstanding()
        for value in values:
            self.submit(fn, value)
        return self._drain(self.get_next)

    def map_unordered(self, fn: Submission[A, V], values: Iterable[V]) -> Iterator[Any]:
        """Like :meth:`map`, but yield each result as soon as it is ready."""
        self._discard_outstanding()
        for value in values:
            self.submit(fn, value)
        return self._drain(self.get_next_unordered)

    def _drain(self, get: Callable[[], Any]) -> Iterator[Any]:
        while self.has_next():
            yield get()

    def submit(self, fn: Submission[A, V], value: V) -> None:
        """Call ``fn`` on an idle actor now, or as soon as one is returned to the pool."""
        if not self._idle:
            self._pending.append((fn, value))
            return
        actor = self._idle.pop()
        future = fn(actor, value)
        index = self._next_task_index
        self._next_task_index += 1
        self._future_by_index[index] = future
        self._call_by_key[_key(future)] = (index, actor)

    def has_next(self) -> bool:
        """Whether any submitted call still has a result to be read."""
        return bool(self._call_by_key) or bool(self._pending)

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """The next result in submission order.

        Raises ``TimeoutError`` if it is not ready within ``timeout`` seconds; with
        ``ignore_if_timedout`` that call is then given up on, so the following one is next.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        if self._next_return_index not in self._future_by_index:
            if not self._call_by_key:
                raise self._no_actor_error()
            raise ValueError(
                "get_next() cannot follow get_next_unordered(): results in submission "
                "order are no longer available; keep using get_next_unordered()."
            )
        future = self._future_by_index[self._next_return_index]
        if timeout is not None and not self._ready(future, timeout):
            if not ignore_if_timedout:
                raise TimeoutError(_TIMEOUT_MESSAGE)
            self._forget(future)
            raise TimeoutError(f"{_TIMEOUT_MESSAGE}; the call was given up on")
        self._forget(future)
        return nebula.get(future)

    def get_next_unordered(
        self, timeout: float | None = None, ignore_if_timedout: bool = False
    ) -> Any:
        """Whichever result is ready first.

        Raises ``TimeoutError`` if none is ready within ``timeout`` seconds; with
        ``ignore_if_timedout`` the oldest outstanding call is then given up on.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        if not self._call_by_key:
            raise self._no_actor_error()
        futures = list(self._future_by_index.values())
        # A call with several returns counts as ready when its first one is.
        probes = [_first_ref(future) for future in futures]
        ready, _ = nebula.wait(probes, num_returns=1, timeout=timeout)
        if not ready:
            if not ignore_if_timedout:
                raise TimeoutError(_TIMEOUT_MESSAGE)
            self._forget(self._future_by_index[min(self._future_by_index)])
            raise TimeoutError(f"{_TIMEOUT_MESSAGE}; the oldest call was given up on")
        done = ready[0]
        future = next(f for f, p in zip(futures, probes, strict=True) if p is done or p == done)
        self._forget(future)
        return nebula.get(future)

    def has_free(self) -> bool:
        """Whether an actor is idle and no submission is waiting for one."""
        return bool(self._idle) and not self._pending

    def pop_idle(self) -> A | None:
        """Take an idle actor out of the pool (to use it directly), or None if none is idle."""
        return self._idle.pop() if self.has_free() else None

    def push(self, actor: A) -> None:
        """Add an actor to the pool; waiting submissions may start on it right away."""
        busy = [a for _, a in self._call_by_key.values()]
        if any(actor == a for a in [*self._idle, *busy]):
            raise ValueError("Actor already belongs to current ActorPool")
        self._return_actor(actor)

    def _ready(self, future: Any, timeout: float) -> bool:
        refs = list(future) if isinstance(future, list) else [future]
        ready, _ = nebula.wait(refs, num_returns=len(refs), timeout=timeout)
        return len(ready) == len(refs)

    def _forget(self, future: Any) -> None:
        """Stop tracking a call and give its actor back; the call's result is not read here."""
        index, actor = self._call_by_key.pop(_key(future))
        del self._future_by_index[index]
        self._next_return_index = max(self._next_return_index, index + 1)
        self._return_actor(actor)

    def _return_actor(self, actor: A) -> None:
        self._idle.append(actor)
        if self._pending:
            self.submit(*self._pending.popleft())

    @staticmethod
    def _no_actor_error() -> RuntimeError:
        # Only reachable once pop_idle() took every actor out: nothing would ever run these.
        return RuntimeError(
            "ActorPool has queued submissions but no actors to run them; push() an actor back."
        )

    def _discard_outstanding(self) -> None:
        self._pending.clear()
        for future in list(self._future_by_index.values()):
            self._forget(future)
