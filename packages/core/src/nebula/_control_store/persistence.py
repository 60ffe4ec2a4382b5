"""The control store's tables on disk (SQLite), so a restarted head picks up where it was.

Each record is a pickled value under (kind, key). Writes go through at once: the control
store is off the task hot path, and what it records (nodes, jobs, actors, names, placement
groups, the plugin KV) changes at human rather than task rates.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
from collections.abc import Iterator
from typing import Any


class TableStore:
    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records ("
            " kind TEXT NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL,"
            " PRIMARY KEY (kind, key))"
        )
        os.chmod(path, 0o600)

    def put(self, kind: str, key: bytes | str, value: Any) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO records (kind, key, value) VALUES (?, ?, ?)",
            (kind, _key(key), pickle.dumps(value, protocol=5)),
        )

    def delete(self, kind: str, key: bytes | str) -> None:
        self._db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (kind, _key(key)))

    def load(self, kind: str) -> Iterator[Any]:
        for (value,) in self._db.execute("SELECT value FROM records WHERE kind = ?", (kind,)):
            yield pickle.loads(value)

    def close(self) -> None:
        self._db.close()


def _key(key: bytes | str) -> bytes:
    return key.encode() if isinstance(key, str) else key
