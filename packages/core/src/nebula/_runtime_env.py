"""``runtime_env``: the environment a task or actor runs in.

Supported keys: ``env_vars`` (a dict of str to str, set in the worker while the task runs,
for an actor's whole life) and ``working_dir`` (a local directory: the task runs with it as
its current directory and first on ``sys.path``; on a cluster it must exist on every node).
Keys that would install software (``pip``, ``conda``, ``py_modules``, ...) are refused with
an error rather than ignored: install packages on the nodes before starting them.

A job's ``nebula.init(runtime_env=...)`` applies to all its tasks; a task's or actor's own
``runtime_env`` is merged on top (``env_vars`` key by key), and tasks inherit the runtime
environment of the task or actor that submits them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

SUPPORTED = ("env_vars", "working_dir")


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
        if not isinstance(working_dir, (str, os.PathLike)):
            raise TypeError(f"runtime_env['working_dir'] must be a path, got {working_dir!r}.")
        path = os.path.abspath(os.fspath(working_dir))
        if not os.path.isdir(path):
            raise ValueError(f"runtime_env['working_dir'] {path!r} is not a directory.")
        checked["working_dir"] = path
    return checked or None


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
    working_dir = env.get("working_dir")
    if working_dir is not None:
        _enter(working_dir)


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
        if env.get("working_dir") is not None:
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
