"""``Dataset.streaming_split(n)``: one execution read by ``n`` consumers, each block by one.

A coordinator actor runs the dataset's streaming executor. Each of the ``n``
:class:`StreamSplitIterator` objects (picklable, so they can go to ``n`` different tasks or
actors) asks it for its next piece: a block reference, or a slice of one, which the consumer
then fetches from the object store itself; the blocks never pass through the coordinator.

Every pass (``iter_batches``/``iter_rows`` call) is an *epoch*: it starts once all ``n``
consumers have asked for it, and runs the dataset afresh. The :class:`Dealer` decides who
gets what: without ``equal`` whoever asks gets the next block; with ``equal`` every consumer
gets the same number of rows, blocks being sliced where needed and the last ``rows % n``
rows dropped.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from nebula.data._blocks import Block, RefBundle
from nebula.data._executor import DataContext, StreamingExecutor
from nebula.data._iterator import DataIterator
from nebula.data._logical import LogicalOperator

import nebula


@dataclass(frozen=True)
class Piece:
    """Rows ``[offset, offset + length)`` of the block behind ``ref``."""

    ref: Any
    offset: int
    length: int
    whole: bool


WAIT = "wait"  # the consumer must wait for the others to catch up


class Dealer:
    """Hands the blocks of one execution to ``n`` consumers; each row goes to one of them.

    With ``equal`` a consumer may hold at most ``rows_seen // n`` rows: blocks wait in a
    buffer until that allows it to take them (sliced if need be). A consumer that is ahead
    pulls more blocks from the execution, until ``max_buffered`` blocks wait for the others.
    """

    def __init__(self, n: int, equal: bool, max_buffered: int) -> None:
        self.n = n
        self.equal = equal
        self.max_buffered = max(1, max_buffered)
        self.delivered = [0] * n
        self.seen = 0
        self.exhausted = False
        self.buffer: deque[Piece] = deque()

    def next_piece(self, split: int, pull: Callable[[], RefBundle | None]) -> Piece | str | None:
        """The next piece for consumer ``split``, None at the end, or ``WAIT``."""
        while True:
            room = self.seen // self.n - self.delivered[split] if self.equal else None
            if self.buffer and (room is None or room > 0):
                return self._take(split, room)
            if self.exhausted:
                return None
            buffered_rows = sum(piece.length for piece in self.buffer)
            if len(self.buffer) >= self.max_buffered and buffered_rows >= self.n:
                return WAIT
            bundle = pull()
            if bundle is None:
                self.exhausted = True
            elif bundle.meta.num_rows:
                self.seen += bundle.meta.num_rows
                self.buffer.append(Piece(bundle.ref, 0, bundle.meta.num_rows, True))

    def _take(self, split: int, room: int | None) -> Piece:
        head = self.buffer[0]
        if room is None or head.length <= room:
            self.buffer.popleft()
            piece = head
        else:
            piece = Piece(head.ref, head.offset, room, False)
            self.buffer[0] = Piece(head.ref, head.offset + room, head.length - room, False)
        self.delivered[split] += piece.length
        return piece


@nebula.remote(num_cpus=0)
class _SplitCoordinator:
    """Runs the executions and deals their blocks; methods run on ``n + 1`` threads."""

    def __init__(self, plan: LogicalOperator, n: int, equal: bool, context: DataContext) -> None:
        self._plan = plan
        self._n = n
        self._equal = equal
        self._context = context
        self._lock = threading.Condition()
        self._epoch = -1
        self._arrived: dict[int, set[int]] = {}
        self._stream: Iterator[RefBundle] | None = None
        self._error: Exception | None = None
        self._dealer = Dealer(n, equal, context.in_flight_bound())

    def start_epoch(self, split: int, epoch: int) -> None:
        """Return once every consumer has asked for ``epoch``, which then runs."""
        with self._lock:
            self._arrived.setdefault(epoch, set()).add(split)
            if len(self._arrived[epoch]) == self._n and self._epoch < epoch:
                self._begin(epoch)
                self._lock.notify_all()
            while self._epoch < epoch:
                self._lock.wait()

    def _begin(self, epoch: int) -> None:
        if self._stream is not None:
            self._stream.close()  # type: ignore[attr-defined]
        self._arrived.pop(epoch)
        self._epoch = epoch
        self._stream = StreamingExecutor(self._plan, self._context).run()
        self._error = None
        self._dealer = Dealer(self._n, self._equal, self._context.in_flight_bound())

    def next_piece(self, split: int, epoch: int) -> Piece | None:
        with self._lock:
            while epoch == self._epoch:
                if self._error is not None:
                    raise self._error
                piece = self._dealer.next_piece(split, self._pull)
                if not isinstance(piece, str):
                    self._lock.notify_all()  # a consumer waiting for room may have some now
                    return piece
                self._lock.wait(timeout=1.0)
            return None  # a later epoch began: this one is over for everyone

    def _pull(self) -> RefBundle | None:
        assert self._stream is not None
        try:
            return next(self._stream, None)
        except Exception as exc:
            self._error = exc  # every consumer of this epoch sees the failure
            raise


class StreamSplitIterator(DataIterator):
    """Consumer ``split`` of ``n`` sharing one execution; see ``Dataset.streaming_split``."""

    def __init__(self, coordinator: Any, split: int, n: int) -> None:
        self._coordinator = coordinator
        self._split = split
        self._n = n
        self._epoch = 0

    def __repr__(self) -> str:
        return f"StreamSplitIterator(split={self._split}, n={self._n})"

    def _iter_blocks(self, prefetch: int = 0) -> Iterator[Block]:
        epoch = self._epoch
        self._epoch += 1
        nebula.get(self._coordinator.start_epoch.remote(self._split, epoch))
        while True:
            piece = nebula.get(self._coordinator.next_piece.remote(self._split, epoch))
            if piece is None:
                return
            block = nebula.get(piece.ref)
            yield block if piece.whole else block.slice(piece.offset, piece.length)


def streaming_split(
    plan: LogicalOperator, n: int, equal: bool, context: DataContext
) -> list[StreamSplitIterator]:
    coordinator = _SplitCoordinator.options(max_concurrency=n + 1).remote(  # type: ignore[attr-defined]
        plan, n, equal, context
    )
    return [StreamSplitIterator(coordinator, split, n) for split in range(n)]
