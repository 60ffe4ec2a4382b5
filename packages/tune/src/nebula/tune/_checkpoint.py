"""``Checkpoint``: a directory of files on some filesystem, handed between trials and runs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pyarrow.fs as pafs

__all__ = ["Checkpoint"]

_METADATA_FILE = ".metadata.json"


class Checkpoint:
    """A directory at ``path`` on ``filesystem`` (local unless a pyarrow filesystem is given).

    Trainables make one with :meth:`from_directory` and hand it to ``tune.report``; tune
    copies it into the trial's storage, so the directory may be a temporary one.
    """

    def __init__(
        self, path: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None
    ) -> None:
        path = os.fspath(path)
        if filesystem is None:
            filesystem, path = _resolve(path)
        self.path = path
        self.filesystem = filesystem

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """A checkpoint of the local directory ``path``."""
        path = os.path.abspath(os.fspath(path))
        if not os.path.isdir(path):
            raise ValueError(f"Checkpoint.from_directory() needs a directory; {path!r} is not one.")
        return cls(path, pafs.LocalFileSystem())

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def to_directory(self, path: str | os.PathLike[str] | None = None) -> str:
        """Copy the checkpoint's files into local ``path`` (a new temporary one by default)."""
        target = os.fspath(path) if path is not None else tempfile.mkdtemp(prefix="checkpoint_")
        os.makedirs(target, exist_ok=True)
        if self.is_local:
            shutil.copytree(self.path, target, dirs_exist_ok=True)
        else:
            pafs.copy_files(
                self.path,
                target,
                source_filesystem=self.filesystem,
                destination_filesystem=pafs.LocalFileSystem(),
            )
        return target

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        """The checkpoint as a local directory: itself when local, else a temporary copy."""
        if self.is_local:
            yield self.path
            return
        target = self.to_directory()
        try:
            yield target
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def get_metadata(self) -> dict[str, Any]:
        try:
            with self.filesystem.open_input_stream(f"{self.path}/{_METADATA_FILE}") as stream:
                return dict(json.loads(stream.read().decode()))
        except (FileNotFoundError, OSError):
            return {}

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        with self.filesystem.open_output_stream(f"{self.path}/{_METADATA_FILE}") as stream:
            stream.write(json.dumps(metadata).encode())

    def __reduce__(self) -> tuple[Any, ...]:
        return (Checkpoint, (self.path, self.filesystem))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Checkpoint)
            and other.path == self.path
            and type(other.filesystem) is type(self.filesystem)
        )

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"Checkpoint(filesystem={self.filesystem.type_name}, path={self.path})"


def _resolve(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        filesystem, resolved = pafs.FileSystem.from_uri(path)
        return filesystem, resolved
    return pafs.LocalFileSystem(), os.path.abspath(path)
