"""The proxy's HTTP protocol: uvicorn's own, with what it writes in one turn sent at once.

uvicorn writes a response's head and its body in two system calls. The proxy has both in
hand at once, so the second call only costs time (and, on a busy machine, a second wake-up
of the client). Here the writes a connection makes in one turn of the event loop are joined
and leave in one call at the end of the turn; nothing waits longer than that turn.
"""

from __future__ import annotations

import asyncio
from typing import Any


class _CoalescingTransport:
    """Wraps a transport: ``write`` gathers, and the gathered bytes leave once per turn."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._loop = asyncio.get_running_loop()
        self._out: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        out = self._out
        out.append(bytes(data))
        if len(out) == 1:
            self._loop.call_soon(self._flush)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def _flush(self) -> None:
        out = self._out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(b) for b in self._out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def coalescing_protocol() -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools when installed, else h11) over gathered writes."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol

    class CoalescingHTTPProtocol(base):  # type: ignore[misc]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            super().connection_made(_CoalescingTransport(transport))

    return CoalescingHTTPProtocol
