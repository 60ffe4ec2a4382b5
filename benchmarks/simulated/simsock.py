"""Sockets for simulated cluster processes, authenticated as every cluster connection is.

A simulated node needs what a node manager shows the control store: an inbox bound at its
own address (the control store connects to it) and a connection of its own to the control
store. ``Mailbox`` is that pair, without the Unix-socket route and the wake-up socket a real
``Endpoint`` adds: hundreds of simulated nodes share one process, and every file
descriptor counts.
"""

from __future__ import annotations

import resource

import zmq

from nebula import _auth
from nebula import _protocol as p


def prepare_context(token: str) -> tuple[zmq.Context[zmq.Socket[bytes]], _auth.CurveKeys]:
    """The process's ZeroMQ context, allowed many sockets, and the cluster's keys.

    Call before any socket is made: ZeroMQ fixes a context's socket limit when it starts.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    context.set(zmq.MAX_SOCKETS, max(1024, min(hard, context.get(zmq.SOCKET_LIMIT))))
    keys = _auth.derive_keys(token)
    _auth.authenticator.allow(keys, context)
    return context, keys


class Mailbox:
    """One simulated process's inbox plus its outgoing connections."""

    __slots__ = ("_context", "_keys", "_outboxes", "address", "bytes_out", "inbox", "msgs_out")

    def __init__(
        self, context: zmq.Context[zmq.Socket[bytes]], keys: _auth.CurveKeys, host: str
    ) -> None:
        self._context = context
        self._keys = keys
        self.inbox = context.socket(zmq.PULL)
        self.inbox.setsockopt(zmq.RCVHWM, 0)
        self.inbox.setsockopt(zmq.LINGER, 0)
        self.inbox.curve_server = True
        self.inbox.curve_secretkey = keys.server_secret
        self.inbox.curve_publickey = keys.server_public
        port = self.inbox.bind_to_random_port(f"tcp://{host}", 20000, 65000, 1000)
        self.address = f"tcp://{host}:{port}"
        self._outboxes: dict[str, zmq.Socket[bytes]] = {}
        self.msgs_out = 0
        self.bytes_out = 0

    def send(self, address: str, message: p.Message) -> None:
        payload = p.encode(message)
        sock = self._outboxes.get(address)
        if sock is None:
            sock = self._context.socket(zmq.PUSH)
            sock.curve_serverkey = self._keys.server_public
            sock.curve_publickey = self._keys.client_public
            sock.curve_secretkey = self._keys.client_secret
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(address)
            self._outboxes[address] = sock
        sock.send(payload)
        self.msgs_out += 1
        self.bytes_out += len(payload)

    def close(self) -> None:
        for sock in self._outboxes.values():
            sock.close(linger=0)
        self._outboxes.clear()
        self.inbox.close(linger=0)
