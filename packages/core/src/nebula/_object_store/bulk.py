"""Objects' bytes between nodes over plain TCP: authenticated, sent with ``sendfile``.

The messages of a cluster travel encrypted (CurveZMQ), and encrypting every byte of a
gigabyte object is what limited node-to-node transfers to about 0.2 GiB/s. Object bytes
take this second path instead: each node manager listens on a bulk port; a reader
connects, both ends prove they hold the cluster's secret (HMAC challenge and response,
each side with its own nonce), then the reader asks for byte ranges and the node manager
sends them straight from the object's file with ``sendfile`` (no copy in user space), the
reader receiving into its own file's mapped pages. Bytes on this path are not encrypted;
a cluster on an untrusted network sets ``NEBULA_ENCRYPT_OBJECT_TRANSFERS=1`` and its
objects travel as encrypted messages again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import socket
import struct
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

_NONCE = 32
_MAC = 32
_REQUEST = struct.Struct("<H32sQQ")  # object id length, id (padded), offset, length
_REPLY = struct.Struct("<BI")  # 0: ok (the bytes follow) / 1: error (its text follows)
_HANDSHAKE_TIMEOUT_S = 10.0


class TransferError(OSError):
    """A bulk transfer failed: the peer is gone, refused us, or lacks the object."""


def _mac(key: bytes, label: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, label + b"".join(parts), hashlib.sha256).digest()


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:], size - got)
        if n == 0:
            raise TransferError("the peer closed the connection")
        got += n
    return bytes(data)


class BulkServer:
    """A node manager's bulk port: serves byte ranges of the objects ``locate`` finds."""

    def __init__(self, host: str, key: bytes, locate: Callable[[bytes], str | None]) -> None:
        self._key = key
        self._locate = locate
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.create_server((host, 0), family=family, backlog=128)
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept_loop, name="nebula-bulk", daemon=True).start()

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                if not self._handshake(conn):
                    return
                conn.settimeout(None)
                while True:
                    self._answer(conn, _recv_exact(conn, _REQUEST.size))
            except (OSError, TransferError):
                return

    def _handshake(self, conn: socket.socket) -> bool:
        conn.settimeout(_HANDSHAKE_TIMEOUT_S)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        server_nonce = secrets.token_bytes(_NONCE)
        conn.sendall(server_nonce)
        hello = _recv_exact(conn, _NONCE + _MAC)
        client_nonce, proof = hello[:_NONCE], hello[_NONCE:]
        if not hmac.compare_digest(proof, _mac(self._key, b"client", server_nonce, client_nonce)):
            logger.warning("refused a bulk connection that does not hold the cluster token")
            return False
        conn.sendall(_mac(self._key, b"server", client_nonce, server_nonce))
        return True

    def _answer(self, conn: socket.socket, request: bytes) -> None:
        id_length, padded, offset, length = _REQUEST.unpack(request)
        path = self._locate(padded[:id_length])
        try:
            if path is None:
                raise FileNotFoundError("the object is not in this node's store")
            fd = os.open(path, os.O_RDONLY)
        except OSError as exc:
            text = (exc.strerror or str(exc)).encode()
            conn.sendall(_REPLY.pack(1, len(text)) + text)
            return
        try:
            if os.fstat(fd).st_size < offset + length:
                text = b"the object is shorter than asked"
                conn.sendall(_REPLY.pack(1, len(text)) + text)
                return
            conn.sendall(_REPLY.pack(0, 0))
            sent = 0
            while sent < length:
                n = os.sendfile(conn.fileno(), fd, offset + sent, length - sent)
                if n == 0:
                    raise TransferError("the object's file ended early")
                sent += n
        finally:
            os.close(fd)


class BulkClient:
    """One authenticated connection to a node manager's bulk port."""

    def __init__(self, host: str, port: int, key: bytes, timeout_s: float = 20.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=_HANDSHAKE_TIMEOUT_S)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            server_nonce = _recv_exact(self._sock, _NONCE)
            client_nonce = secrets.token_bytes(_NONCE)
            proof = _mac(key, b"client", server_nonce, client_nonce)
            self._sock.sendall(client_nonce + proof)
            answer = _recv_exact(self._sock, _MAC)
        except (OSError, TransferError) as exc:
            self._sock.close()
            raise TransferError(f"the bulk port at {host}:{port} refused us: {exc}") from None
        if not hmac.compare_digest(answer, _mac(key, b"server", client_nonce, server_nonce)):
            self._sock.close()
            raise TransferError(f"the bulk port at {host}:{port} does not hold the cluster token")
        self._sock.settimeout(timeout_s)

    def read_into(self, object_id: bytes, offset: int, target: memoryview) -> None:
        """Fill ``target`` with the object's bytes from ``offset``."""
        length = target.nbytes
        self._sock.sendall(_REQUEST.pack(len(object_id), object_id, offset, length))
        status, text_length = _REPLY.unpack(_recv_exact(self._sock, _REPLY.size))
        if status != 0:
            raise TransferError(_recv_exact(self._sock, text_length).decode(errors="replace"))
        got = 0
        while got < length:
            n = self._sock.recv_into(target[got:], min(length - got, 64 << 20))
            if n == 0:
                raise TransferError("the node holding the object closed the connection")
            got += n

    def close(self) -> None:
        self._sock.close()
