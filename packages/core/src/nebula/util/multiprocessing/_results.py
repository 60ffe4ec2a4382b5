"""The handles a :class:`~nebula.util.multiprocessing.pool.Pool` hands back for pending work.

They mirror the standard library's ``ApplyResult``/``MapResult``/``IMapIterator`` so code
that inspects results (``ready()``, ``successful()``, ``get(timeout)``, ``next(timeout)``)
ports unchanged. Each handle is also the sink the pool's dispatcher thread writes chunk
results into, which is why every mutation happens under a lock or before an event is set.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing import TimeoutError as PoolTimeoutError
from typing import Any, Generic, TypeVar

T = TypeVar("T")

Callback = Callable[[Any], object]
ErrorCallback = Callable[[BaseException], object]


def _run_callback(callback: Callable[[Any], object] | None, value: Any) -> None:
    """Report, rather than propagate, a failing callback: the caller of ``get`` never called it."""
    if callback is None:
        return
    try:
        callback(value)
    except Exception:
        print("Exception in a nebula Pool callback:", file=sys.stderr)
        traceback.print_exc()


class ApplyResult(Generic[T]):
    """The pending outcome of one ``apply_async`` call."""

    def __init__(
        self, callback: Callback | None = None, error_callback: ErrorCallback | None = None
    ) -> None:
        self._event = threading.Event()
        self._callback = callback
        self._error_callback = error_callback
        self._success = False
        self._value: Any = None

    def ready(self) -> bool:
        return self._event.is_set()

    def successful(self) -> bool:
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        return self._success

    def wait(self, timeout: float | None = None) -> None:
        self._event.wait(timeout)

    def get(self, timeout: float | None = None) -> T:
        self.wait(timeout)
        if not self.ready():
            raise PoolTimeoutError
        if self._success:
            return self._value  # type: ignore[no-any-return]
        raise self._value

    def _set(self, success: bool, value: Any) -> None:
        # Callbacks run before the event is set, as in the standard library, so a caller
        # returning from get() may rely on them having run.
        if self._event.is_set():
            return
        self._success = success
        self._value = value
        if success:
            _run_callback(self._callback, value)
        else:
            _run_callback(self._error_callback, value)
        self._event.set()

    # The dispatcher speaks in chunks; a single call is a one-chunk job of one item.
    def _set_chunk(self, index: int, success: bool, value: Any) -> None:
        self._set(success, value[0] if success else value)

    def _set_length(self, chunks: int) -> None:
        pass

    def _abort(self, error: BaseException) -> None:
        self._set(False, error)


AsyncResult = ApplyResult


class MapResult(ApplyResult[list[T]]):
    """The pending outcome of ``map_async``/``starmap_async``: one list, filled chunk by chunk."""

    def __init__(
        self,
        length: int,
        chunksize: int,
        callback: Callback | None = None,
        error_callback: ErrorCallback | None = None,
    ) -> None:
        super().__init__(callback, error_callback)
        self._lock = threading.Lock()
        self._chunksize = chunksize
        self._items: list[Any] = [None] * length
        self._chunks_left = -(-length // chunksize) if chunksize else 0
        if self._chunks_left == 0:
            self._set(True, self._items)

    def _set_chunk(self, index: int, success: bool, value: Any) -> None:
        if not success:
            # The first failure decides the whole map, like the standard library.
            self._set(False, value)
            return
        with self._lock:
            start = index * self._chunksize
            self._items[start : start + len(value)] = value
            self._chunks_left -= 1
            finished = self._chunks_left == 0
        if finished:
            self._set(True, self._items)


class IMapIterator(Generic[T]):
    """Results of ``imap`` in input order, yielded as soon as the next one in line is back."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._chunks: dict[int, tuple[bool, Any]] = {}
        self._ready: collections.deque[tuple[bool, Any]] = collections.deque()
        self._next_chunk = 0
        self._chunk_count: int | None = None

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return self.next()

    def next(self, timeout: float | None = None) -> T:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._ready:
                    success, value = self._ready.popleft()
                    if success:
                        return value  # type: ignore[no-any-return]
                    raise value
                if self._take_chunk():
                    continue
                if self._chunk_count is not None and self._next_chunk >= self._chunk_count:
                    raise StopIteration
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise PoolTimeoutError
                self._cond.wait(remaining)

    def _take_chunk(self) -> bool:
        """Move the next chunk in line, if it is back, to the items ready to yield."""
        chunk = self._chunks.pop(self._next_chunk, None)
        if chunk is None:
            return False
        self._next_chunk += 1
        self._push(chunk)
        return True

    def _push(self, chunk: tuple[bool, Any]) -> None:
        success, value = chunk
        if success:
            self._ready.extend((True, item) for item in value)
        else:
            # A failed chunk raises once where its first item would have been.
            self._ready.append((False, value))

    def _set_chunk(self, index: int, success: bool, value: Any) -> None:
        with self._cond:
            self._chunks[index] = (success, value)
            self._cond.notify_all()

    def _set_length(self, chunks: int) -> None:
        with self._cond:
            self._chunk_count = chunks
            self._cond.notify_all()

    def _abort(self, error: BaseException) -> None:
        with self._cond:
            # The first result still missing fails, then the iterator ends.
            missing = self._next_chunk
            while missing in self._chunks:
                missing += 1
            if self._chunk_count is not None and missing >= self._chunk_count:
                return
            self._chunks[missing] = (False, error)
            self._chunk_count = missing + 1
            self._cond.notify_all()


class IMapUnorderedIterator(IMapIterator[T]):
    """Results of ``imap_unordered`` in the order they come back."""

    def _take_chunk(self) -> bool:
        if not self._chunks:
            return False
        index = next(iter(self._chunks))
        self._push(self._chunks.pop(index))
        self._next_chunk += 1
        return True

    def _abort(self, error: BaseException) -> None:
        with self._cond:
            received = self._next_chunk + len(self._chunks)
            if self._chunk_count is not None and received >= self._chunk_count:
                return
            self._chunks[-1] = (False, error)
            self._chunk_count = received + 1
            self._cond.notify_all()
