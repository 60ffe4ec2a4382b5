"""Noticing that the owner of a borrowed object died, so a get fails instead of hanging.

While this process waits for borrowed values, it pings their owners now and then; an owner
that stays silent past the deadline is declared dead and every value still expected from
it becomes an ``ObjectLostError``.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING

from nebula import _config
from nebula import _protocol as p

if TYPE_CHECKING:
    from nebula._worker.core_worker import CoreWorker


class OwnerProbe:
    def __init__(self, cw: CoreWorker) -> None:
        self.cw = cw
        self._ids = itertools.count(1)
        self._last_heard: dict[str, float] = {}
        self._pending: dict[int, tuple[str, float]] = {}
        self._dead: set[str] = set()
        self._last_round = 0.0

    def on_pong(self, msg: p.Pong) -> None:
        owner, _sent = self._pending.pop(-msg.request_id, ("", 0.0))
        if owner:
            self._last_heard[owner] = time.monotonic()
            for request_id in [r for r, (o, _) in self._pending.items() if o == owner]:
                del self._pending[request_id]

    def tick(self) -> None:
        """Runs on the I/O thread with the lock held."""
        now = time.monotonic()
        if now - self._last_round < _config.OWNER_PING_S:
            return
        self._last_round = now
        waiting: dict[str, list[bytes]] = {}
        for object_id in self.cw.awaiting_borrowed:
            entry = self.cw.refs.get(object_id)
            if entry is not None and entry.value is None:
                waiting.setdefault(entry.owner, []).append(object_id)
        for owner, object_ids in waiting.items():
            silent_since = max(
                self._last_heard.get(owner, 0.0),
                min((sent for o, sent in self._pending.values() if o == owner), default=now),
            )
            if now - silent_since > _config.OWNER_TIMEOUT_S:
                self._declare_dead(owner, object_ids)
                continue
            request_id = next(self._ids)
            self._pending[request_id] = (owner, now)
            self.cw.send(owner, p.Ping(-request_id, self.cw.address))
        # Forget pings to owners nobody waits on any more.
        for request_id, (owner, _sent) in list(self._pending.items()):
            if owner not in waiting:
                del self._pending[request_id]

    def _declare_dead(self, owner: str, object_ids: list[bytes]) -> None:
        from nebula._worker.core_worker import _serialize_error
        from nebula.exceptions import ObjectLostError

        self._dead.add(owner)
        self.cw.endpoint.disconnect(owner)
        for object_id in object_ids:
            error = ObjectLostError(
                f"Object {object_id.hex()} is lost: the process that owns it ({owner}) stopped "
                f"answering for {_config.OWNER_TIMEOUT_S:g} s. An object lives as long as the "
                "process that created it (the driver, or the task or actor that called put or "
                "submitted the task)."
            )
            self.cw.set_value(
                p.ObjectValue(object_id, inline=_serialize_error(error), is_error=True),
                pin_contained=False,
            )
