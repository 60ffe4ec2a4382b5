"""Cluster authentication: every connection proves it holds the cluster's secret.

The head generates a random token. Every process derives two CURVE key pairs from it, one
for listening sockets and one for connecting sockets. A listener accepts only connections
made with the connecting key pair, checked by a ZAP handler before the connection can
deliver anything, so a peer without the token never gets a byte of it unpickled (ZeroMQ's
CURVE handshake also encrypts the traffic). A process may know the tokens of several
clusters (a test driving two): its listeners accept any of them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from dataclasses import dataclass

import zmq
import zmq.auth.thread
import zmq.utils.z85

TOKEN_ENV = "NEBULA_CLUSTER_TOKEN"
TOKEN_FILE = "cluster_token"


@dataclass(frozen=True)
class CurveKeys:
    server_public: bytes
    server_secret: bytes
    client_public: bytes
    client_secret: bytes


def new_token() -> str:
    return secrets.token_hex(32)


def bulk_key(token: str | None) -> bytes:
    """The HMAC key both ends of a bulk object transfer prove they hold."""
    return hashlib.sha256(b"nebula-bulk:" + (token or "").encode()).digest()


def derive_keys(token: str) -> CurveKeys:
    def pair(label: bytes) -> tuple[bytes, bytes]:
        secret = zmq.utils.z85.encode(hashlib.sha256(label + token.encode()).digest())
        return zmq.curve_public(secret), secret

    server_public, server_secret = pair(b"nebula-server:")
    client_public, client_secret = pair(b"nebula-client:")
    return CurveKeys(server_public, server_secret, client_public, client_secret)


class _Authenticator:
    """The process's ZAP handler: admits clients holding a known token's client key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._allowed: set[bytes] = set()
        self._thread: zmq.auth.thread.ThreadAuthenticator | None = None
        self._pid = os.getpid()

    def allow(self, keys: CurveKeys, context: zmq.Context[zmq.Socket[bytes]]) -> None:
        with self._lock:
            self._allowed.add(keys.client_public)  # the ZAP handler sees z85 keys
            if self._thread is None or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = zmq.auth.thread.ThreadAuthenticator(context)
                self._thread.start()
                self._thread.configure_curve_callback("*", credentials_provider=self)

    def callback(self, domain: str, key: bytes) -> bool:
        with self._lock:
            return key in self._allowed

    def stop(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._thread.stop()
                self._thread = None


authenticator = _Authenticator()


def token_from_environment(temp_dir: str, address: str | None = None) -> str | None:
    """The token of the cluster to join: ``NEBULA_CLUSTER_TOKEN``; else the file kept for
    the cluster at ``address`` by whoever started it on this machine; else the file of the
    last ``nebula start --head`` here."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return token.strip()
    paths = [os.path.join(temp_dir, TOKEN_FILE)]
    if address is not None:
        paths.insert(0, token_path_for(temp_dir, address))
    for path in paths:
        try:
            with open(path) as f:
                found = f.read().strip()
        except OSError:
            continue
        if found:
            return found
    return None


def token_path_for(temp_dir: str, address: str) -> str:
    """Where the token of the cluster whose control store listens at ``address`` is kept.

    One file per address, so two clusters on one machine never overwrite each other's.
    """
    host_port = address.removeprefix("tcp://").removeprefix("nebula://")
    name = host_port.replace("[", "").replace("]", "").replace(":", "_").replace("/", "_")
    return os.path.join(temp_dir, "tokens", name)


def write_token_file(temp_dir: str, token: str, address: str | None = None) -> str:
    """Write ``token`` readable by this user only: for the cluster at ``address``, or (no
    address) as the default token of this machine's ``nebula start --head`` cluster."""
    path = (
        os.path.join(temp_dir, TOKEN_FILE) if address is None else token_path_for(temp_dir, address)
    )
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    os.chmod(path, 0o600)
    return path


def remove_token_file(temp_dir: str, address: str) -> None:
    """Forget the token of a cluster that has stopped."""
    try:
        os.unlink(token_path_for(temp_dir, address))
    except OSError:
        pass
