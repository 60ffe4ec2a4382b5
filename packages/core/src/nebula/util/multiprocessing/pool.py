"""A drop-in for :class:`multiprocessing.pool.Pool` whose processes are Nebula actors.

Code written for the standard library scales from one machine to a cluster by changing
one import::

    from nebula.util.multiprocessing.pool import Pool

Each of the pool's "processes" is an actor holding one CPU that runs the initializer once
and then the chunks of calls it is given, one at a time, just like a worker process. The
methods, their arguments, the result handles and the errors are the standard library's:
exceptions raised by the function come back as the original exception (with the remote
traceback as its cause) and a closed pool refuses work with ``ValueError``.

Two deliberate differences: ``imap``/``imap_unordered`` read their input lazily, as the
actors need it, so an endless iterable works; and work still pending when the pool is
terminated fails with ``ValueError`` instead of leaving ``get()`` blocked forever.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import nebula
from nebula.util.multiprocessing._dispatcher import Dispatcher, Job, Mode, chunked
from nebula.util.multiprocessing._results import (
    ApplyResult,
    AsyncResult,
    Callback,
    ErrorCallback,
    IMapIterator,
    IMapUnorderedIterator,
    MapResult,
)

__all__ = [
    "ApplyResult",
    "AsyncResult",
    "IMapIterator",
    "IMapUnorderedIterator",
    "MapResult",
    "Pool",
]

T = TypeVar("T")

_RUN, _CLOSE, _TERMINATE = "RUN", "CLOSE", "TERMINATE"


class Pool:
    """A pool of actors with the standard library's ``multiprocessing.pool.Pool`` API.

    ``context`` is accepted for compatibility and ignored. ``nebula_address`` is where to
    connect when Nebula is not initialized yet, and ``nebula_remote_args`` overrides the
    actors' options (``num_cpus=1`` by default), e.g. to give each one a GPU.
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: Sequence[Any] | None = None,
        maxtasksperchild: int | None = None,
        context: object = None,
        nebula_address: str | None = None,
        nebula_remote_args: Mapping[str, Any] | None = None,
    ) -> None:
        self._state = _TERMINATE  # Until fully built, so __del__ has nothing to clean up.
        if initializer is not None and not callable(initializer):
            raise TypeError("initializer must be a callable")
        if maxtasksperchild is not None and (
            not isinstance(maxtasksperchild, int) or maxtasksperchild <= 0
        ):
            raise ValueError("maxtasksperchild must be a positive int or None")
        if not nebula.is_initialized():
            nebula.init(address=nebula_address)
        if processes is None:
            processes = max(1, int(nebula.cluster_resources().get("CPU", 1)))
        if processes < 1:
            raise ValueError("Number of processes must be at least 1")
        self._processes = processes
        remote_args = {"num_cpus": 1, **(nebula_remote_args or {})}
        self._dispatcher = Dispatcher(
            processes, initializer, initargs or (), maxtasksperchild, remote_args
        )
        self._state = _RUN

    def __repr__(self) -> str:
        return f"<{type(self).__name__} state={self._state} pool_size={self._processes}>"

    def __reduce__(self) -> Any:
        raise NotImplementedError("pool objects cannot be passed between processes or pickled")

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.terminate()

    def __del__(self) -> None:
        if getattr(self, "_state", _TERMINATE) == _RUN:
            warnings.warn(
                f"unclosed running pool {self!r}", ResourceWarning, stacklevel=2, source=self
            )
            self._state = _TERMINATE
            self._dispatcher.stop()

    # -- single calls ---------------------------------------------------------------------

    def apply(
        self,
        func: Callable[..., T],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
    ) -> T:
        """Call ``func(*args, **kwds)`` in one of the actors and wait for the result."""
        return self.apply_async(func, args, kwds).get()

    def apply_async(
        self,
        func: Callable[..., T],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
        callback: Callback | None = None,
        error_callback: ErrorCallback | None = None,
    ) -> ApplyResult[T]:
        self._check_running()
        result: ApplyResult[T] = ApplyResult(callback, error_callback)
        call = (tuple(args), dict(kwds or {}))
        self._dispatcher.submit(Job(func, "apply", iter([[call]]), result))
        return result

    # -- whole iterables ------------------------------------------------------------------

    def map(
        self, func: Callable[[Any], T], iterable: Iterable[Any], chunksize: int | None = None
    ) -> list[T]:
        """Apply ``func`` to every item, in chunks spread over the actors; keep input order."""
        return self._map_async(func, iterable, "map", chunksize).get()

    def map_async(
        self,
        func: Callable[[Any], T],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callback | None = None,
        error_callback: ErrorCallback | None = None,
    ) -> MapResult[T]:
        return self._map_async(func, iterable, "map", chunksize, callback, error_callback)

    def starmap(
        self,
        func: Callable[..., T],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
    ) -> list[T]:
        """Like :meth:`map`, but each item is unpacked into the function's arguments."""
        return self._map_async(func, iterable, "starmap", chunksize).get()

    def starmap_async(
        self,
        func: Callable[..., T],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callback | None = None,
        error_callback: ErrorCallback | None = None,
    ) -> MapResult[T]:
        return self._map_async(func, iterable, "starmap", chunksize, callback, error_callback)

    def imap(
        self, func: Callable[[Any], T], iterable: Iterable[Any], chunksize: int = 1
    ) -> IMapIterator[T]:
        """Yield ``func(item)`` in input order, each as soon as it and those before it are back."""
        return self._imap(func, iterable, chunksize, IMapIterator())

    def imap_unordered(
        self, func: Callable[[Any], T], iterable: Iterable[Any], chunksize: int = 1
    ) -> IMapUnorderedIterator[T]:
        """Yield ``func(item)`` in the order the results come back."""
        result: IMapUnorderedIterator[T] = IMapUnorderedIterator()
        self._imap(func, iterable, chunksize, result)
        return result

    def _map_async(
        self,
        func: Callable[..., T],
        iterable: Iterable[Any],
        mode: Mode,
        chunksize: int | None,
        callback: Callback | None = None,
        error_callback: ErrorCallback | None = None,
    ) -> MapResult[T]:
        self._check_running()
        items = iterable if isinstance(iterable, Sequence) else list(iterable)
        if chunksize is None:
            # The standard library's heuristic: about four chunks per process.
            chunksize, extra = divmod(len(items), self._processes * 4)
            if extra:
                chunksize += 1
        elif chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize}")
        result: MapResult[T] = MapResult(len(items), chunksize, callback, error_callback)
        if items:
            self._dispatcher.submit(Job(func, mode, chunked(items, chunksize), result))
        return result

    def _imap(
        self,
        func: Callable[[Any], T],
        iterable: Iterable[Any],
        chunksize: int,
        result: IMapIterator[T],
    ) -> IMapIterator[T]:
        self._check_running()
        if chunksize < 1:
            raise ValueError(f"Chunksize must be 1+, not {chunksize}")
        self._dispatcher.submit(Job(func, "map", chunked(iterable, chunksize), result))
        return result

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Accept no more work; the actors exit once what was submitted is done."""
        if self._state == _RUN:
            self._state = _CLOSE
            self._dispatcher.close()

    def terminate(self) -> None:
        """Kill the actors now; work still pending fails instead of completing."""
        self._state = _TERMINATE
        self._dispatcher.stop()
        self._dispatcher.join()

    def join(self) -> None:
        """Wait for the actors to finish; call :meth:`close` or :meth:`terminate` first."""
        if self._state == _RUN:
            raise ValueError("Pool is still running")
        self._dispatcher.join()

    def _check_running(self) -> None:
        if self._state != _RUN:
            raise ValueError("Pool not running")
