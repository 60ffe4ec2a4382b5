"""What loopback TCP carries on this machine, without Nebula or Ray: the wire for transfer.py.

A thread sends a 1 GiB file from shared memory with ``sendfile``; the receiver reads it
with ``recv_into`` over 1 or 2 connections at once (each bringing one half), into a buffer
whose pages are already there (the stream alone) or into a fresh shared-memory file's
mapping (what receiving an object costs: a page fault and a zeroed page every 4 KiB).
Prints one JSON line per case, best of ``--repeat``::

    python benchmarks/scale/loopback.py
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import socket
import sys
import tempfile
import threading
import time

SIZE = 1 << 30


def _serve(conn: socket.socket, path: str) -> None:
    with conn:
        header = conn.recv(16)
        offset, length = int.from_bytes(header[:8], "little"), int.from_bytes(header[8:], "little")
        fd = os.open(path, os.O_RDONLY)
        sent = 0
        while sent < length:
            sent += os.sendfile(conn.fileno(), fd, offset + sent, length - sent)
        os.close(fd)


def _receive(sock: socket.socket, view: memoryview, offset: int, length: int) -> None:
    sock.sendall(offset.to_bytes(8, "little") + length.to_bytes(8, "little"))
    got = 0
    while got < length:
        got += sock.recv_into(view[offset + got : offset + length], min(length - got, 64 << 20))


def once(source: str, streams: int, fresh: bool, reused: bytearray) -> float:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        for _ in range(streams):
            conn, _ = listener.accept()
            threading.Thread(target=_serve, args=(conn, source), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(streams)]
    directory = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    target = os.path.join(directory, f"loopback-target-{os.getpid()}")
    fd = os.open(target, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, SIZE)
        start = time.perf_counter()
        mapped = mmap.mmap(fd, SIZE) if fresh else None
        view = memoryview(mapped if mapped is not None else reused)
        part = SIZE // streams
        threads = [
            threading.Thread(target=_receive, args=(socks[i], view, i * part, part))
            for i in range(streams)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - start
        view.release()
        if mapped is not None:
            mapped.close()
    finally:
        os.close(fd)
        os.unlink(target)
        for sock in socks:
            sock.close()
        listener.close()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    directory = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    source = os.path.join(directory, f"loopback-source-{os.getpid()}")
    reused = bytearray(SIZE)
    try:
        with open(source, "wb") as f:
            block = os.urandom(64 << 20)
            for _ in range(SIZE // len(block)):
                f.write(block)
        for streams in (1, 2):
            for fresh in (False, True):
                times = [once(source, streams, fresh, reused) for _ in range(args.repeat)]
                print(
                    json.dumps(
                        {
                            "workload": "loopback",
                            "streams": streams,
                            "into": "fresh shm pages" if fresh else "a buffer in place",
                            "all_s": [round(t, 3) for t in times],
                            "gib_per_s": round(1 / min(times), 2),
                        }
                    ),
                    flush=True,
                )
    finally:
        os.unlink(source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
