"""The request channel between callers (the proxy, handles) and replicas.

Requests do not travel as actor calls: a replica listens on a TCP port of its node, and each
calling process keeps one connection per replica over which requests are multiplexed by id.
That keeps a request to a few microseconds of framing on each side, which is what lets the
proxy run near the speed of a bare web server. The actor calls remain the control path
(start, health, reconfigure, drain).

Every connection first proves it holds the controller's secret (sent to replicas and routers
over authenticated actor calls) before any frame of it is unpickled.

Frames are a 4-byte big-endian length and a pickled message, one of the named tuples below.
"""

from __future__ import annotations

import asyncio
import hmac
import pickle
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

import cloudpickle

HEADER = struct.Struct(">I")
TOKEN_SIZE = 32
MAX_FRAME = 1 << 31


# ---------------------------------------------------------------- caller -> replica


class Request(NamedTuple):
    """Run ``method`` on the replica; ``stream`` asks for a generator's items as they come."""

    rid: int
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    stream: bool
    request_id: str
    route: str


class Cancel(NamedTuple):
    """The caller no longer wants request ``rid``: cancel its handler."""

    rid: int


# ---------------------------------------------------------------- replica -> caller


class Result(NamedTuple):
    """Request ``rid`` finished with ``value``; ``ongoing`` is the replica's load now."""

    rid: int
    value: Any
    ongoing: int


class Failure(NamedTuple):
    """Request ``rid`` raised ``error`` (``error_text`` when the error does not pickle)."""

    rid: int
    error: BaseException | None
    error_text: str
    ongoing: int


class Chunk(NamedTuple):
    """Items a streaming request produced so far."""

    rid: int
    items: list[Any]


class Rejected(NamedTuple):
    """The replica is full or draining and did not start request ``rid``: send it elsewhere."""

    rid: int
    ongoing: int


def dumps(message: Any) -> bytes:
    try:
        payload = pickle.dumps(message, protocol=5)
    except Exception:
        # Values defined in __main__ or locally need cloudpickle; it is slower, so only then.
        payload = cloudpickle.dumps(message, protocol=5)
    return HEADER.pack(len(payload)) + payload


class FrameProtocol(asyncio.Protocol):
    """Splits a byte stream into messages and hands each to ``on_message``.

    A server side (``token`` given) first checks the peer's secret and closes the connection
    on a mismatch; a client side sends its secret as soon as it connects.
    """

    def __init__(
        self,
        on_message: Callable[[Any], None],
        *,
        expect_token: bytes | None = None,
        send_token: bytes | None = None,
        on_lost: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self._on_message = on_message
        self._expect_token = expect_token
        self._send_token = send_token
        self._on_lost = on_lost
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._loop = asyncio.get_running_loop()
        if self._send_token is not None:
            transport.write(self._send_token)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if self._expect_token is not None:
            if len(buffer) < TOKEN_SIZE:
                return
            if not hmac.compare_digest(bytes(buffer[:TOKEN_SIZE]), self._expect_token):
                assert self.transport is not None
                self.transport.close()
                buffer.clear()
                return
            del buffer[:TOKEN_SIZE]
            self._expect_token = None
        offset = 0
        size = len(buffer)
        messages = []
        with memoryview(buffer) as view:
            while size - offset >= 4:
                (length,) = HEADER.unpack_from(view, offset)
                end = offset + 4 + length
                if end > size:
                    break
                messages.append(pickle.loads(view[offset + 4 : end]))
                offset = end
        if offset:
            del buffer[:offset]
        for message in messages:
            self._on_message(message)

    def send(self, message: Any) -> None:
        """Queue a message; what is sent in one turn of the loop leaves in one write.

        The other side then wakes once for the lot: a proxy's requests sent together, and
        a replica's answers finished together, cost one system call and one wake-up.
        """
        if self.transport is None or self.closed:
            return
        out = self._out
        out.append(dumps(message))
        if len(out) == 1:
            assert self._loop is not None
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._on_lost is not None:
            self._on_lost(exc)

    def close(self) -> None:
        self._flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()
