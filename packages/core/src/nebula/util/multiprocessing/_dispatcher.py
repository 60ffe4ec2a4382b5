"""The actors behind a Pool and the thread that feeds them.

A Pool's "processes" are actors, one task at a time each. A single dispatcher thread per
pool owns every call into Nebula after start-up: it hands chunks of input to the least busy
actor, collects replies with ``nebula.wait``, writes them into the result handles and
replaces actors that reached ``maxtasksperchild`` or died. Keeping all of that on one thread
means the caller's threads only ever touch plain Python state under a lock, and results
(and their callbacks) arrive even when nobody is blocked in ``get()``, as with the stdlib.
"""

from __future__ import annotations

import collections
import functools
import itertools
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.pool import RemoteTraceback  # type: ignore[attr-defined]
from typing import Any, Literal, Protocol

import cloudpickle

import nebula

Mode = Literal["apply", "map", "starmap"]

# Chunks sent to an actor at once. One, like a worker process taking a task only when it is
# free: queueing a second would hide a round trip but strand it behind a slow first one
# while other actors sit idle. Tiny tasks should use a larger chunksize instead.
_PIPELINE_DEPTH = 1
# How long one nebula.wait may block before the dispatcher looks for newly submitted work.
_POLL_S = 0.02


class _PoolWorker:
    """One pool "process": runs the initializer once, then chunks of calls, one at a time."""

    def __init__(self, initializer: Callable[..., object] | None, initargs: Sequence[Any]) -> None:
        if initializer is not None:
            initializer(*initargs)

    def run_chunk(self, func: Callable[..., Any], mode: Mode, items: list[Any]) -> tuple[bool, Any]:
        # A user exception travels back as a value, not as a task failure, so the caller can
        # re-raise the original object and tell it apart from a dead actor.
        try:
            if mode == "apply":
                return True, [func(*args, **kwds) for args, kwds in items]
            if mode == "starmap":
                return True, [func(*item) for item in items]
            return True, [func(item) for item in items]
        except Exception as exc:
            return False, _picklable_error(exc, traceback.format_exc())

    def ping(self) -> None:
        """Let a caller know this actor has finished its queue of calls."""


def _picklable_error(exc: Exception, tb: str) -> tuple[Exception, str]:
    try:
        cloudpickle.dumps(exc)
    except Exception:
        exc = RuntimeError(f"{type(exc).__name__}: {exc} (the original could not be pickled)")
    return exc, tb


def _rebuild_error(payload: tuple[Exception, str]) -> Exception:
    exc, tb = payload
    exc.__cause__ = RemoteTraceback(f'\n"""\n{tb}"""')
    return exc


class ResultSink(Protocol):
    """What the dispatcher writes into; the result handles in ``_results`` implement it."""

    def _set_chunk(self, index: int, success: bool, value: Any) -> None: ...
    def _set_length(self, chunks: int) -> None: ...
    def _abort(self, error: BaseException) -> None: ...


@dataclass
class Job:
    """One call on the pool: a function, how to call it, its input in chunks, and a sink."""

    func: Callable[..., Any]
    mode: Mode
    chunks: Iterator[list[Any]]
    sink: ResultSink
    _taken: int = 0

    def next_chunk(self) -> tuple[int, list[Any]] | None:
        """The next chunk of input, or None (after telling the sink how many there were)."""
        chunk = next(self.chunks, None)
        if chunk is None:
            self.sink._set_length(self._taken)
            return None
        self._taken += 1
        return self._taken - 1, chunk

    def fail_input(self, error: BaseException) -> None:
        """The input iterable raised: that position fails and the job ends there."""
        self.sink._set_chunk(self._taken, False, error)
        self.sink._set_length(self._taken + 1)


def chunked(iterable: Any, chunksize: int) -> Iterator[list[Any]]:
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, chunksize)):
        yield chunk


@dataclass(eq=False)
class _Slot:
    """One of the pool's processes; ``handle`` is None between a retired actor and its successor."""

    handle: Any
    assigned: int = 0
    in_flight: int = 0
    broken: bool = False


@dataclass(eq=False)
class _Call:
    job: Job
    index: int
    slot: _Slot


@dataclass
class _State:
    """Everything the caller's threads and the dispatcher share; guarded by ``Dispatcher.cond``."""

    jobs: collections.deque[Job] = field(default_factory=collections.deque)
    in_flight: dict[Any, _Call] = field(default_factory=dict)
    closing: bool = False
    stopping: bool = False


class Dispatcher:
    """Feeds a pool's actors from its queue of jobs on a background thread."""

    def __init__(
        self,
        processes: int,
        initializer: Callable[..., object] | None,
        initargs: Sequence[Any],
        maxtasksperchild: int | None,
        remote_args: Mapping[str, Any],
    ) -> None:
        self._actor_cls = nebula.remote(**remote_args)(_PoolWorker)
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._maxtasks = maxtasksperchild
        self.cond = threading.Condition()
        self._state = _State()
        self._slots = [_Slot(self._spawn()) for _ in range(processes)]
        self._thread = threading.Thread(
            target=self._run, name="nebula-pool-dispatcher", daemon=True
        )
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self.cond:
            self._state.jobs.append(job)
            self.cond.notify_all()

    def close(self) -> None:
        """Finish what was submitted, then release the actors."""
        with self.cond:
            self._state.closing = True
            self.cond.notify_all()

    def stop(self) -> None:
        """Abandon outstanding work and kill the actors, without waiting for it to happen."""
        with self.cond:
            self._state.stopping = True
            self.cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _spawn(self) -> Any:
        return self._actor_cls.remote(self._initializer, self._initargs)

    def _accepts(self, slot: _Slot, depth: int) -> bool:
        if slot.broken or slot.in_flight >= depth:
            return False
        return self._maxtasks is None or slot.assigned < self._maxtasks

    def _run(self) -> None:
        error: BaseException = ValueError("Pool was terminated before the task finished")
        try:
            while self._step():
                pass
        except Exception as exc:  # Nebula shut down under us, or worse: fail, don't hang.
            error = exc
        finally:
            self._release(error)

    def _step(self) -> bool:
        """Dispatch what fits, collect what is back; False once the pool is done."""
        deliveries: list[Callable[[], None]] = []
        with self.cond:
            state = self._state
            if state.stopping:
                return False
            self._fill_slots(deliveries)
            refs = list(state.in_flight)
            if not refs and not deliveries:
                if state.closing and not state.jobs:
                    return False
                self.cond.wait()
                return True
        for deliver in deliveries:
            deliver()
        if refs:
            ready, _ = nebula.wait(refs, num_returns=1, timeout=_POLL_S)
            for ref in ready:
                self._collect(ref)
        return True

    def _fill_slots(self, deliveries: list[Callable[[], None]]) -> None:
        jobs = self._state.jobs
        # Spread work in rounds so every idle actor gets a chunk before any gets a second.
        for depth in range(1, _PIPELINE_DEPTH + 1):
            for slot in self._slots:
                while jobs and self._accepts(slot, depth):
                    job = jobs[0]
                    try:
                        chunk = job.next_chunk()
                    except Exception as exc:
                        jobs.popleft()
                        deliveries.append(functools.partial(job.fail_input, exc))
                        continue
                    if chunk is None:
                        jobs.popleft()
                        continue
                    index, items = chunk
                    if slot.handle is None:
                        slot.handle = self._spawn()
                    ref = slot.handle.run_chunk.remote(job.func, job.mode, items)
                    self._state.in_flight[ref] = _Call(job, index, slot)
                    slot.assigned += 1
                    slot.in_flight += 1

    def _collect(self, ref: Any) -> None:
        with self.cond:
            call = self._state.in_flight.pop(ref)
        try:
            success, payload = nebula.get(ref)
        except Exception as exc:
            # Not the user's function failing (that comes back as a value): the actor is gone.
            call.slot.broken = True
            success, payload = False, exc
        else:
            if not success:
                payload = _rebuild_error(payload)
        call.job.sink._set_chunk(call.index, success, payload)
        with self.cond:
            call.slot.in_flight -= 1
            self._recycle(call.slot)

    def _recycle(self, slot: _Slot) -> None:
        """Retire an actor that died or did its share of tasks, once its queue is empty.

        Its successor starts only when there is work for it, so a pool that is done is not
        left starting actors just to kill them.
        """
        retiring = self._maxtasks is not None and slot.assigned >= self._maxtasks
        if slot.in_flight or not (slot.broken or retiring):
            return
        _kill_quietly(slot.handle)
        slot.handle, slot.assigned, slot.broken = None, 0, False

    def _release(self, error: BaseException) -> None:
        with self.cond:
            self._state.stopping = True
            calls = list(self._state.in_flight.values())
            jobs = list(self._state.jobs)
            self._state.in_flight.clear()
            self._state.jobs.clear()
            slots = list(self._slots)
        for slot in slots:
            if slot.handle is not None:
                _kill_quietly(slot.handle)
        for sink in _unique_sinks(calls, jobs):
            sink._abort(error)


def _unique_sinks(calls: list[_Call], jobs: list[Job]) -> list[ResultSink]:
    sinks: dict[int, ResultSink] = {}
    for job in [call.job for call in calls] + jobs:
        sinks.setdefault(id(job.sink), job.sink)
    return list(sinks.values())


def _kill_quietly(handle: Any) -> None:
    try:
        nebula.kill(handle)
    except Exception:
        pass  # Already dead, or Nebula is shutting down: either way it is gone.
