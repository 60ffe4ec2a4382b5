"""``runtime_env``: the environment a task or actor runs in.

Supported keys: ``env_vars`` (a dict of str to str, set in the worker while the task runs,
for an actor's whole life), ``working_dir`` (a directory: the task runs with it as its
current directory and first on ``sys.path``) and ``py_modules`` (directories whose parent
goes on ``sys.path``, so ``import name`` finds each). A directory is either a local path,
which must then exist on every node, or a package stored in the cluster (``pkg://NAME.zip``;
``gcs://`` as Ray's clients write it), which each node fetches from the control store and
unpacks once: that is how ``nebula job submit --working-dir`` ships a directory.
Keys that would install software (``pip``, ``conda``, ...) are refused with an error
rather than ignored: install packages on the nodes before starting them.

A job's ``nebula.init(runtime_env=...)`` applies to all its tasks; a task's or actor's own
``runtime_env`` is merged on top (``env_vars`` key by key), and tasks inherit the runtime
environment of the task or actor that submits them.
"""

from __future__ import annotations

import fcntl
import io
import os
import sys
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

SUPPORTED = ("env_vars", "working_dir", "py_modules")
PACKAGE_SCHEMES = ("pkg://", "gcs://")
PACKAGE_KV_PREFIX = "pkg:"
# The largest package (zipped directory) a cluster stores.
MAX_PACKAGE_BYTES = 100 * 1024 * 1024

# Fetches a stored package's bytes by name; set by the worker process (None: a driver).
_package_fetcher: Callable[[str], bytes | None] | None = None


def is_package_uri(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PACKAGE_SCHEMES)


def package_name(uri: str) -> str:
    name = uri.split("://", 1)[1]
    if not name or "/" in name or name.startswith(".") or not name.endswith(".zip"):
        raise ValueError(f"a package URI looks like pkg://NAME.zip, got {uri!r}.")
    return name


def set_package_fetcher(fetch: Callable[[str], bytes | None]) -> None:
    global _package_fetcher
    _package_fetcher = fetch


def validate(env: Any) -> dict[str, Any] | None:
    """A checked copy of ``env``; raises naming the first problem."""
    if env is None:
        return None
    if not isinstance(env, Mapping):
        raise TypeError(f"runtime_env must be a dict, got {type(env).__name__}.")
    unknown = [key for key in env if key not in SUPPORTED]
    if unknown:
        raise ValueError(
            f"runtime_env key(s) {unknown} are not supported (supported: "
            f"{', '.join(SUPPORTED)}); install packages on every node before starting it."
        )
    checked: dict[str, Any] = {}
    env_vars = env.get("env_vars")
    if env_vars is not None:
        if not isinstance(env_vars, Mapping) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in env_vars.items()
        ):
            raise TypeError(f"runtime_env['env_vars'] must map str to str, got {env_vars!r}.")
        checked["env_vars"] = dict(env_vars)
    working_dir = env.get("working_dir")
    if working_dir is not None:
        checked["working_dir"] = _checked_directory("working_dir", working_dir)
    py_modules = env.get("py_modules")
    if py_modules is not None:
        if isinstance(py_modules, (str, os.PathLike)) or not isinstance(py_modules, (list, tuple)):
            raise TypeError(f"runtime_env['py_modules'] must be a list, got {py_modules!r}.")
        checked["py_modules"] = [_checked_directory("py_modules", m) for m in py_modules]
    return checked or None


def _checked_directory(key: str, value: Any) -> str:
    if is_package_uri(value):
        package_name(value)
        return str(value)
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"runtime_env[{key!r}] takes paths or pkg:// URIs, got {value!r}.")
    path = os.path.abspath(os.fspath(value))
    if not os.path.isdir(path):
        raise ValueError(f"runtime_env[{key!r}]: {path!r} is not a directory.")
    return path


def merge(base: Mapping[str, Any] | None, override: Mapping[str, Any] | None) -> dict | None:
    """``override`` on top of ``base``; their ``env_vars`` merge key by key."""
    if not base:
        return dict(override) if override else None
    if not override:
        return dict(base)
    merged = {**base, **override}
    if "env_vars" in base and "env_vars" in override:
        merged["env_vars"] = {**base["env_vars"], **override["env_vars"]}
    return merged


def apply(env: Mapping[str, Any] | None) -> None:
    """Set ``env`` in this process for good (an actor's worker)."""
    if not env:
        return
    os.environ.update(env.get("env_vars") or {})
    for module in env.get("py_modules") or ():
        parent = module_search_path(module)
        if parent not in sys.path:
            sys.path.insert(0, parent)
    working_dir = env.get("working_dir")
    if working_dir is not None:
        _enter(local_directory(working_dir))


@contextmanager
def applied(env: Mapping[str, Any] | None) -> Iterator[None]:
    """Set ``env`` in this process while the block runs, then put everything back."""
    if not env:
        yield
        return
    env_vars = env.get("env_vars") or {}
    saved = {name: os.environ.get(name) for name in env_vars}
    cwd = os.getcwd()
    path = list(sys.path)
    try:
        apply(env)
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if env.get("working_dir") is not None or env.get("py_modules"):
            os.chdir(cwd)
            sys.path[:] = path


def _enter(working_dir: str) -> None:
    try:
        os.chdir(working_dir)
    except OSError as exc:
        raise FileNotFoundError(
            f"runtime_env['working_dir'] {working_dir!r} does not exist on this node: {exc}"
        ) from exc
    if working_dir not in sys.path:
        sys.path.insert(0, working_dir)


def module_search_path(module: str) -> str:
    """The folder to put on ``sys.path`` so a ``py_modules`` entry imports by its name: a
    local module's parent; a package's unpacked root (it holds the module's folder)."""
    if is_package_uri(module):
        return local_directory(module)
    return os.path.dirname(module.rstrip(os.sep))


def local_directory(directory: str) -> str:
    """A local directory for a path or a stored package (fetched and unpacked once per node)."""
    if not is_package_uri(directory):
        return directory
    name = package_name(directory)
    from nebula import _config

    root = os.path.join(_config.TEMP_DIR, "runtime_resources")
    target = os.path.join(root, name.removesuffix(".zip"))
    done = os.path.join(target, ".nebula_unpacked")
    if os.path.exists(done):
        return target
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, f".{name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process per node unpacks it
        if os.path.exists(done):
            return target
        data = _package_fetcher(name) if _package_fetcher is not None else None
        if data is None:
            raise FileNotFoundError(
                f"the package {directory} is not stored in this cluster; upload it first "
                "(nebula job submit --working-dir does) or pass a local directory."
            )
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(target)
        open(done, "w").close()
    return target


def pack_directory(path: str, *, top_level: bool = False) -> tuple[str, bytes]:
    """Zip a directory as a package: its name (``_nebula_pkg_<content hash>.zip``) and bytes.

    ``top_level`` keeps the directory's own name as the archive's root (for ``py_modules``,
    where the module's name is the folder's). Hidden files and ``__pycache__`` are left out.
    """
    import hashlib

    path = os.path.abspath(path)
    prefix = os.path.basename(path.rstrip(os.sep)) if top_level else ""
    digest = hashlib.sha256(prefix.encode())
    buffer = io.BytesIO()
    total = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
            for file in sorted(f for f in files if not f.startswith(".")):
                full = os.path.join(folder, file)
                relative = os.path.relpath(full, path)
                name = os.path.join(prefix, relative) if prefix else relative
                with open(full, "rb") as f:
                    data = f.read()
                total += len(data)
                if total > MAX_PACKAGE_BYTES:
                    raise ValueError(
                        f"{path} holds more than {MAX_PACKAGE_BYTES // 2**20} MiB; ship large "
                        "files another way (shared storage, or nebula.put) and keep the "
                        "directory to code and small data."
                    )
                digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (os.stat(full).st_mode & 0xFFFF) << 16
                archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    return f"_nebula_pkg_{digest.hexdigest()[:24]}.zip", buffer.getvalue()
