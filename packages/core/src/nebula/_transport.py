"""Message transport over ZeroMQ.

Each process binds one PULL socket (its *address*) and keeps one PUSH socket per peer it
talks to. The inbox is also bound to a Unix socket named after the address, which peers on
the same host use instead of loopback TCP, for cheaper hops. One thread at a time reads the
inbox (see ``_worker/inbox.py``); any thread may send, under a lock, so a caller thread never
hops to another thread to send. ZeroMQ keeps the order of messages on a socket, which is
what gives actor calls their per-caller ordering.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable

import zmq

from nebula import _auth, _config
from nebula._protocol import Message, ProtocolError, decode, encode

logger = logging.getLogger(__name__)


class MessageTooLarge(ValueError):
    """A message is larger than a peer accepts (``MAX_MESSAGE_BYTES``).

    Raised before anything is sent: a peer cut off by ZeroMQ for an oversized message
    would otherwise drop it silently and leave its sender waiting forever.
    """

    def __init__(self, kind: str, size: int) -> None:
        self.kind = kind
        self.size = size
        super().__init__(
            f"a {kind} message of {size:,} bytes is larger than the limit of "
            f"{_config.MAX_MESSAGE_BYTES:,} bytes (NEBULA_MAX_MESSAGE_BYTES); pass large "
            "values with nebula.put() and fewer values per call."
        )


# How long without a message before a loop given ``idle_tick_s`` slows its tick.
IDLE_AFTER_S = 1.0


class Endpoint:
    """One process's inbox plus its outgoing connections."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, token: str | None) -> None:
        self._context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        _allow_sockets(self._context)
        self._keys = _auth.derive_keys(token) if token else None
        # Proves this process holds the token on the bulk object path (_object_store.bulk).
        self.bulk_key = _auth.bulk_key(token)
        self._inbox = self._context.socket(zmq.PULL)
        self._inbox.setsockopt(zmq.RCVHWM, 0)
        self._inbox.setsockopt(zmq.LINGER, 0)
        # A peer sending something larger is cut off by ZeroMQ before it is buffered.
        self._inbox.setsockopt(zmq.MAXMSGSIZE, _config.MAX_MESSAGE_BYTES)
        if self._keys is not None:
            # Only peers holding the cluster token complete the handshake (see _auth).
            _auth.authenticator.allow(self._keys, self._context)
            self._inbox.curve_server = True
            self._inbox.curve_secretkey = self._keys.server_secret
            self._inbox.curve_publickey = self._keys.server_public
        if port:
            self._inbox.bind(f"tcp://{host}:{port}")
        else:
            port = self._inbox.bind_to_random_port(f"tcp://{host}")
        self.host = host
        self.port = port
        self.address = f"tcp://{host}:{port}"
        self._ipc_path = _bind_ipc(self._inbox, host, port)
        self._outboxes: dict[str, zmq.Socket[bytes]] = {}
        self._send_lock = threading.Lock()
        # A second inbox for waking the loop from other threads without a message.
        self._wake_addr = f"inproc://wake-{id(self)}"
        self._wake_recv = self._context.socket(zmq.PULL)
        self._wake_recv.bind(self._wake_addr)
        self._wake_send = self._context.socket(zmq.PUSH)
        self._wake_send.connect(self._wake_addr)
        self._closed = False
        # When the inbox was last found empty: every message delivered before then has
        # been handled. A process that is behind can tell a silent peer from a backlog.
        self.caught_up_at = time.monotonic()

    # ------------------------------------------------------------------ sending

    def send(self, address: str, message: Message) -> None:
        payload = encode(message)
        if len(payload) > _config.MAX_MESSAGE_BYTES:
            raise MessageTooLarge(type(message).__name__, len(payload))
        self.send_encoded(address, payload)

    def send_encoded(self, address: str, payload: bytes) -> None:
        """Send a message already encoded (one encoding sent to many peers)."""
        with self._send_lock:
            if self._closed:
                return
            sock = self._outboxes.get(address)
            if sock is None:
                sock = self._connect(address)
            sock.send(payload, 0, copy=len(payload) < 65536)

    def _connect(self, address: str) -> zmq.Socket[bytes]:
        sock = self._context.socket(zmq.PUSH)
        if self._keys is not None:
            sock.curve_serverkey = self._keys.server_public
            sock.curve_publickey = self._keys.client_public
            sock.curve_secretkey = self._keys.client_secret
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.LINGER, 2000)
        sock.connect(self._local_route(address) or address)
        self._outboxes[address] = sock
        return sock

    def _local_route(self, address: str) -> str | None:
        """The Unix-socket route to a peer on this host, when it has one."""
        if not address.startswith(f"tcp://{self.host}:"):
            return None
        path = _ipc_path_of(address)
        return f"ipc://{path}" if path is not None and os.path.exists(path) else None

    def disconnect(self, address: str) -> None:
        """Forget a dead peer; queued messages to it are dropped."""
        with self._send_lock:
            sock = self._outboxes.pop(address, None)
            if sock is not None:
                sock.close(linger=0)

    def wake(self) -> None:
        with self._send_lock:
            if not self._closed:
                self._wake_send.send(b"", zmq.NOBLOCK)

    # ---------------------------------------------------------------- receiving

    def serve(
        self,
        handle: Callable[[Message], None],
        *,
        should_stop: Callable[[], bool],
        on_tick: Callable[[], None] | None = None,
        tick_s: float = 0.05,
        extra_fds: Callable[[], Iterable[int]] | None = None,
        on_fd: Callable[[int], None] | None = None,
        deadline: float | None = None,
        idle_tick_s: float | None = None,
    ) -> None:
        """Run the receive loop until ``should_stop()``; ``handle`` sees each message.

        ``should_stop`` is checked after each batch of messages and each tick; with a
        ``deadline`` (a ``time.monotonic()`` value) the loop also returns once it passes.
        With ``idle_tick_s``, the tick slows to that period once no message has come for
        ``IDLE_AFTER_S``: a thousand idle processes then wake a few times a second each,
        not fifty.
        """
        busy_tick_s = tick_s
        last_message = time.monotonic()
        next_tick = last_message + tick_s
        registered: set[int] = set()
        poller = zmq.Poller()
        poller.register(self._inbox, zmq.POLLIN)
        poller.register(self._wake_recv, zmq.POLLIN)
        while not should_stop():
            if extra_fds is not None:
                wanted = set(extra_fds())
                for fd in registered - wanted:
                    poller.unregister(fd)
                for fd in wanted - registered:
                    poller.register(fd, zmq.POLLIN)
                registered = wanted
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            wake_at = next_tick if deadline is None else min(next_tick, deadline)
            events = poller.poll(max(0, math.ceil((wake_at - now) * 1000)))
            if not any(sock is self._inbox for sock, _ in events):
                self.caught_up_at = time.monotonic()
            elif idle_tick_s is not None:
                last_message = time.monotonic()
                next_tick = min(next_tick, last_message + busy_tick_s)
            if idle_tick_s is not None:
                idle = time.monotonic() - last_message >= IDLE_AFTER_S
                tick_s = idle_tick_s if idle else busy_tick_s
            for sock, _ in events:
                if sock is self._inbox:
                    self._drain(handle, time.monotonic() + max(busy_tick_s, 0.05))
                elif sock is self._wake_recv:
                    try:
                        while True:
                            self._wake_recv.recv(zmq.NOBLOCK)
                    except zmq.Again:
                        pass
                elif on_fd is not None and isinstance(sock, int):
                    on_fd(sock)
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + tick_s
                if on_tick is not None:
                    on_tick()

    def _drain(self, handle: Callable[[Message], None], until: float) -> None:
        # Read everything queued before polling again (fewer syscalls under bursts), but
        # no longer than until ``until``: a burst of slow messages must not hold off the
        # tick, which sends the heartbeats that tell the cluster this process is alive.
        for count in range(10000):
            if count and time.monotonic() > until:
                return
            try:
                payload = self._inbox.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                self.caught_up_at = time.monotonic()
                return
            try:
                message = decode(payload.buffer)
            except ProtocolError as exc:
                logger.warning("dropped a malformed message: %s", exc)
                continue
            try:
                handle(message)
            except Exception:
                logger.exception("error while handling %s", type(message).__name__)

    def recv(self, timeout_s: float | None) -> Message | None:
        """Receive one message directly (for processes without a loop yet)."""
        if self._inbox.poll(None if timeout_s is None else int(timeout_s * 1000)):
            return decode(self._inbox.recv())
        return None

    def close(self) -> None:
        with self._send_lock:
            if self._closed:
                return
            self._closed = True
            for sock in self._outboxes.values():
                sock.close()
            self._outboxes.clear()
            self._wake_send.close(linger=0)
        self._wake_recv.close(linger=0)
        self._inbox.close(linger=0)
        if self._ipc_path is not None:
            remove_ipc_path(self.address)


def allow_many_peers() -> None:
    """Let a process that talks to every node (the control store, a node manager) open
    as many connections as the system allows it: raise its soft limit on open files to
    the hard one. Call before the first ``Endpoint``."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


def _allow_sockets(context: zmq.Context[zmq.Socket[bytes]]) -> None:
    """ZeroMQ allows 1,023 sockets a context unless told otherwise, and this process keeps
    one per peer: let it have as many as its open-file limit. Takes effect only before the
    context's first socket, which is the first endpoint's."""
    import resource

    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = context.get(zmq.SOCKET_LIMIT)
    wanted = limit if soft == resource.RLIM_INFINITY else min(soft, limit)
    if wanted > context.get(zmq.MAX_SOCKETS):
        context.set(zmq.MAX_SOCKETS, wanted)


def _ipc_dir() -> str:
    return os.path.join(_config.TEMP_DIR, f"ipc-{os.getuid()}")


def ipc_path(host: str, port: int) -> str | None:
    """Where the inbox bound at ``tcp://host:port`` also listens on this host."""
    path = os.path.join(_ipc_dir(), f"{host}-{port}")
    return path if len(path.encode()) < 100 else None  # the limit of a Unix socket path


def host_of(address: str) -> str:
    """The host part of a ``tcp://HOST:PORT`` address (IPv6 brackets removed)."""
    host = address.removeprefix("tcp://").rpartition(":")[0]
    return host.removeprefix("[").removesuffix("]")


def _ipc_path_of(address: str) -> str | None:
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    return ipc_path(host, int(port)) if port.isdigit() else None


def remove_ipc_path(address: str) -> None:
    """Remove a (possibly dead) process's Unix socket file, given its TCP address."""
    path = _ipc_path_of(address)
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass


def sweep_stale_ipc_paths() -> int:
    """Remove the Unix socket files of processes that died without closing (SIGKILL).

    A file nobody listens on refuses a connection at once; returns how many were removed.
    """
    import socket

    directory = _ipc_dir()
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    removed = 0
    for name in names:
        path = os.path.join(directory, name)
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            try:
                os.unlink(path)
                removed += 1
            except OSError:
                pass
        except OSError:
            pass
        finally:
            probe.close()
    return removed


def _bind_ipc(inbox: zmq.Socket[bytes], host: str, port: int) -> str | None:
    path = ipc_path(host, port)
    if path is None:
        return None
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)  # left by a process that died without closing
        inbox.bind(f"ipc://{path}")
    except (OSError, zmq.ZMQError) as exc:
        logger.debug("no Unix socket for %s:%s: %s", host, port, exc)
        return None
    return path
