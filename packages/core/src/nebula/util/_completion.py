"""Results as they finish: ``as_completed`` over refs, ``map_unordered`` over items with a
bound on the tasks in flight."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import nebula


def as_completed(
    refs: Sequence[Any],
    *,
    chunk_size: int = 10,
    yield_obj_refs: bool = False,
    timeout: float | None = None,
) -> Iterator[Any]:
    """Yield the values of ``refs`` (or the refs, with ``yield_obj_refs=True``) as they
    finish, up to ``chunk_size`` at a time, instead of waiting for all as ``get`` does.

    With ``timeout`` (seconds), waiting longer than that for the next chunk raises
    ``GetTimeoutError``. The order is that of completion, not of ``refs``.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}.")
    pending = list(refs)
    while pending:
        ready, pending = nebula.wait(
            pending, num_returns=min(chunk_size, len(pending)), timeout=timeout
        )
        if not ready:
            from nebula.exceptions import GetTimeoutError

            raise GetTimeoutError(
                f"none of {len(pending)} pending results finished within {timeout} s."
            )
        yield from ready if yield_obj_refs else nebula.get(ready)


def map_unordered(
    fn: Any,
    items: Iterable[Any],
    *,
    backpressure_size: int | None = 100,
    chunk_size: int = 10,
    yield_obj_refs: bool = False,
) -> Iterator[Any]:
    """Call the remote function ``fn`` on each item and yield the results as they finish,
    keeping at most ``backpressure_size`` tasks in flight (None: no bound)."""
    if not hasattr(fn, "remote"):
        raise TypeError(f"map_unordered() takes a remote function (@nebula.remote), got {fn!r}.")
    if backpressure_size is not None and backpressure_size < 1:
        raise ValueError(f"backpressure_size must be at least 1, got {backpressure_size}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}.")
    in_flight: list[Any] = []

    def take(count: int) -> Iterator[Any]:
        nonlocal in_flight
        ready, in_flight = nebula.wait(in_flight, num_returns=min(count, len(in_flight)))
        yield from ready if yield_obj_refs else nebula.get(ready)

    for item in items:
        in_flight.append(fn.remote(item))
        if backpressure_size is not None and len(in_flight) >= backpressure_size:
            yield from take(chunk_size)
    while in_flight:
        yield from take(chunk_size)
