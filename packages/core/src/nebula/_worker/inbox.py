"""Which thread reads a process's inbox.

The I/O thread reads it by default. The main thread, when it is about to block on results
(a ``get`` in the driver or in a task, or an idle worker waiting for its next task), takes a
turn reading it instead: the message it waits for is then handled on the thread that waits
for it, with no hand-off between threads on the way. That hand-off costs tens of
microseconds per hop, which is most of a round trip's overhead once the wire is fast.

Only one thread reads at a time (ZeroMQ sockets are not thread-safe); the reader lock is the
memory barrier when the socket changes threads. Taking a turn asks the I/O thread to step
aside, which happens while the request is on the wire, off the critical path. Nothing wakes
the I/O thread when a turn ends: it looks every millisecond or so, and takes over only once
the main thread has stayed away for a whole look. A main thread that serves short calls
back to back so keeps the inbox, and the two threads never fight for the interpreter lock
on the way; a long task or user code gets the I/O thread reading within a millisecond.

A signal arriving while the main thread is inside a message handler would interrupt the
handler half way (Python runs signal handlers on the main thread only), so while the main
thread reads, ``SIGINT`` handlers are deferred until it stops reading, within one tick.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from nebula._transport import Endpoint

_TICK_S = 0.02
# The tick of a process idle for a while (a worker waiting for work, with no message for
# a second): it still returns idle leases, flushes events and checks its health.
_IDLE_TICK_S = 0.25
# How often the I/O thread looks whether the main thread still reads; the gap doubles, up to
# a tick, while the main thread stays in one long turn (an idle worker waiting for work).
_LOOK_MIN_S = 0.001


class InboxTurns:
    def __init__(
        self,
        endpoint: Endpoint,
        dispatch: Callable[[Any], None],
        tick: Callable[[], None],
        stopping: Callable[[], bool],
        handler_lock: Any,
    ) -> None:
        self._endpoint = endpoint
        self._dispatch = dispatch
        self._tick = tick
        self._stopping = stopping
        # Handlers run under this (re-entrant) lock: a thread holding it must not wait for
        # the reader lock, which the I/O thread may hold while it waits for this one.
        self._held_by_me: Callable[[], bool] = handler_lock._is_owned
        self._reader = threading.Lock()  # held by the thread reading the inbox
        self._main_turn = threading.Lock()  # held by the main thread for its whole turn
        self._turns_taken = 0
        self._io_reading = False
        self._deferred: tuple[Callable[..., Any], int, FrameType | None] | None = None
        # While the main thread waits for work in one long turn, the I/O thread looks less
        # often; the end of that turn wakes it at once.
        self._idle_turn = False
        self._io_napping = False
        self._turn_over = threading.Event()

    def io_thread_loop(self) -> None:
        """The I/O thread's loop: read the inbox whenever the main thread is not reading it."""
        main_turn = self._main_turn
        gap = _LOOK_MIN_S
        last_seen = -1
        while not self._stopping():
            turns = self._turns_taken
            if main_turn.locked() or turns != last_seen:
                # Reading, or between two turns: look again later, sooner if it moves.
                cap = _IDLE_TICK_S if self._idle_turn else _TICK_S
                gap = min(gap * 2, cap) if turns == last_seen else _LOOK_MIN_S
                last_seen = turns
                if gap > _TICK_S:
                    self._io_napping = True
                    self._turn_over.wait(gap)
                    self._io_napping = False
                    self._turn_over.clear()
                else:
                    time.sleep(gap)
                continue
            # Away for a whole look: it runs something longer than a call. Read meanwhile.
            self._io_reading = True
            try:
                with self._reader:
                    self._endpoint.serve(
                        self._dispatch,
                        should_stop=lambda: self._stopping() or main_turn.locked(),
                        on_tick=self._tick,
                        tick_s=_TICK_S,
                    )
            finally:
                self._io_reading = False
            gap = _LOOK_MIN_S

    def read_until(
        self, done: Callable[[], bool], deadline: float | None, *, idle: bool = False
    ) -> bool:
        """Read the inbox on this thread until ``done()`` or the deadline.

        Returns False without reading when this is not the main thread, or it holds the
        handler lock, or it already reads (a handler that itself waits); the caller then
        waits to be notified as before.
        """
        if threading.current_thread() is not threading.main_thread() or self._held_by_me():
            return False
        if self._stopping() or not self._main_turn.acquire(blocking=False):
            return False
        self._turns_taken += 1
        try:
            self._defer_sigint()
            if self._io_reading:
                self._endpoint.wake()  # it leaves its poll and steps aside
            self._idle_turn = idle
            with self._reader:
                self._endpoint.serve(
                    self._dispatch,
                    should_stop=lambda: self._stopping() or self._deferred is not None or done(),
                    on_tick=self._tick,
                    tick_s=_TICK_S,
                    deadline=deadline,
                    idle_tick_s=_IDLE_TICK_S if idle else None,
                )
        finally:
            self._idle_turn = False
            self._main_turn.release()
            if self._io_napping:
                self._turn_over.set()
        deferred, self._deferred = self._deferred, None
        if deferred is not None:
            handler, signum, frame = deferred
            handler(signum, frame)  # may raise (KeyboardInterrupt, a task's cancellation)
        return True

    def _defer_sigint(self) -> None:
        """Wrap the SIGINT handler so it waits while the main thread reads.

        A new wrapper per handler it wraps: code that saves and restores handlers keeps
        working. Nothing is wrapped when SIGINT is ignored or left to its default action.
        """
        current = signal.getsignal(signal.SIGINT)
        if not callable(current) or getattr(current, "_nebula_defers", False):
            return

        def deferring(signum: int, frame: FrameType | None) -> Any:
            # Never raise while reading: this may run between any two bytecodes of a handler.
            if self._main_turn.locked():  # only the main thread takes turns, and runs this
                self._deferred = (current, signum, frame)
                return None
            return current(signum, frame)

        deferring._nebula_defers = True  # type: ignore[attr-defined]
        signal.signal(signal.SIGINT, deferring)
