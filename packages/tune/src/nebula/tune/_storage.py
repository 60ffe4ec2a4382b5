"""Where an experiment lives: a local directory or any pyarrow filesystem URI.

The driver writes its logs (``result.json``, ``progress.csv``, the experiment state) to a
local directory: the experiment directory itself when storage is local, otherwise a staging
copy that :meth:`StorageContext.sync_up` uploads. Trial processes upload checkpoints straight
to storage, so checkpoint bytes never pass through the driver.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from typing import Any

import pyarrow.fs as pafs

__all__ = ["DEFAULT_STORAGE_PATH", "StorageContext", "copy_directory"]

DEFAULT_STORAGE_PATH = os.path.join("~", "nebula_results")


@dataclass
class StorageContext:
    """The experiment's location on its filesystem, and the driver's local copy of it."""

    filesystem: pafs.FileSystem
    experiment_path: str
    """The experiment directory on ``filesystem`` (a bucket/key path for object stores)."""
    uri: str
    """How a user names the experiment: a local path, or the URI with its scheme."""
    local_dir: str
    """Where the driver writes: the experiment directory itself, or a staging copy."""
    _synced: dict[str, tuple[float, int]] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        storage_path: str | os.PathLike[str] | None,
        name: str,
        filesystem: pafs.FileSystem | None = None,
    ) -> StorageContext:
        base = os.fspath(storage_path) if storage_path is not None else DEFAULT_STORAGE_PATH
        fs, root = _filesystem_for(base, filesystem)
        experiment_path = f"{root.rstrip('/')}/{name}"
        uri = _join_uri(base, name) if "://" in base else experiment_path
        if isinstance(fs, pafs.LocalFileSystem):
            local_dir = experiment_path
        else:
            staging = os.path.join(tempfile.gettempdir(), "nebula_tune_staging")
            local_dir = os.path.join(staging, f"{name}-{uuid.uuid4().hex[:8]}")
        return cls(fs, experiment_path, uri, local_dir)

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def trial_path(self, dirname: str) -> str:
        return f"{self.experiment_path}/{dirname}"

    def local_trial_dir(self, dirname: str) -> str:
        return os.path.join(self.local_dir, dirname)

    def check_writable(self) -> None:
        """Create the experiment directory and write a file there, or say why it cannot."""
        probe = f"{self.experiment_path}/.write_probe-{uuid.uuid4().hex[:8]}"
        try:
            os.makedirs(self.local_dir, exist_ok=True)
            self.filesystem.create_dir(self.experiment_path, recursive=True)
            with self.filesystem.open_output_stream(probe) as stream:
                stream.write(b"ok")
            self.filesystem.delete_file(probe)
        except OSError as exc:
            raise ValueError(
                f"cannot write to storage_path {self.uri!r} ({exc}); pass a storage_path "
                "(RunConfig(storage_path=...)) that this process can create and write."
            ) from exc

    def sync_up(self, force: bool = False) -> None:
        """Upload the staging files that changed since the last upload (remote storage only)."""
        if self.is_local:
            return
        for root, _, files in os.walk(self.local_dir):
            for filename in files:
                local = os.path.join(root, filename)
                try:
                    stat = os.stat(local)
                except FileNotFoundError:
                    continue
                stamp = (stat.st_mtime, stat.st_size)
                if not force and self._synced.get(local) == stamp:
                    continue
                relative = os.path.relpath(local, self.local_dir).replace(os.sep, "/")
                target = f"{self.experiment_path}/{relative}"
                self.filesystem.create_dir(target.rsplit("/", 1)[0], recursive=True)
                with open(local, "rb") as source, self.filesystem.open_output_stream(target) as out:
                    shutil.copyfileobj(source, out, 1 << 20)
                self._synced[local] = stamp

    def download_experiment(self) -> None:
        """Fill the staging directory from storage (restoring a remote experiment)."""
        if self.is_local:
            return
        os.makedirs(self.local_dir, exist_ok=True)
        selector = pafs.FileSelector(self.experiment_path, recursive=True)
        for info in self.filesystem.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            relative = info.path[len(self.experiment_path) :].lstrip("/")
            if "/checkpoint_" in f"/{relative}":
                continue  # checkpoints stay in storage; trials read them from there
            local = os.path.join(self.local_dir, relative)
            os.makedirs(os.path.dirname(local), exist_ok=True)
            with self.filesystem.open_input_stream(info.path) as stream, open(local, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            stat = os.stat(local)
            self._synced[local] = (stat.st_mtime, stat.st_size)

    def exists(self) -> bool:
        return self.filesystem.get_file_info(self.experiment_path).type == pafs.FileType.Directory

    def delete(self, path: str) -> None:
        try:
            self.filesystem.delete_dir(path)
        except (FileNotFoundError, OSError):
            pass

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_synced"] = {}
        return state


def _filesystem_for(base: str, filesystem: pafs.FileSystem | None) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the root path on it."""
    if filesystem is not None:
        return filesystem, base.rstrip("/")
    if "://" in base:
        fs, path = pafs.FileSystem.from_uri(base)
        return fs, path
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(base))


def _join_uri(base: str, name: str) -> str:
    """``s3://bucket/dir?opts`` + ``name`` -> ``s3://bucket/dir/name?opts``."""
    head, sep, query = base.partition("?")
    return f"{head.rstrip('/')}/{name}{sep}{query}"


def copy_directory(source: str, filesystem: pafs.FileSystem, target: str) -> None:
    """Copy local directory ``source`` to ``target`` on ``filesystem``."""
    if isinstance(filesystem, pafs.LocalFileSystem):
        if os.path.abspath(source) == os.path.abspath(target):
            return
        shutil.copytree(source, target, dirs_exist_ok=True)
        return
    filesystem.create_dir(target, recursive=True)
    pafs.copy_files(
        source,
        target,
        source_filesystem=pafs.LocalFileSystem(),
        destination_filesystem=filesystem,
    )
