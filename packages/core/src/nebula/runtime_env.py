"""``RuntimeEnv``: a runtime environment spelled as a class, as ``runtime_env=`` takes it.

Nebula applies ``env_vars``, ``working_dir`` and ``py_modules``; other keys (``pip``,
``conda``, ``container``...) are refused when the environment is used, with a message
saying to install packages on every node.
"""

from __future__ import annotations

from typing import Any


class RuntimeEnvConfig(dict):  # type: ignore[type-arg]
    """Settings of how an environment is set up (``setup_timeout_seconds``, ``eager_install``),
    accepted for compatibility: Nebula sets environments up in the worker, at once."""

    def __init__(self, setup_timeout_seconds: int = 600, eager_install: bool = True) -> None:
        super().__init__(setup_timeout_seconds=setup_timeout_seconds, eager_install=eager_install)


class RuntimeEnv(dict):  # type: ignore[type-arg]
    """A dict of the given fields: ``RuntimeEnv(env_vars={"A": "1"}, working_dir=".")``."""

    def __init__(
        self,
        *,
        py_modules: list[str] | None = None,
        working_dir: str | None = None,
        env_vars: dict[str, str] | None = None,
        config: dict[str, Any] | RuntimeEnvConfig | None = None,
        **other: Any,
    ) -> None:
        fields = {
            "py_modules": py_modules,
            "working_dir": working_dir,
            "env_vars": env_vars,
            **other,
        }
        # ``config`` (how the environment is set up) has nothing to set in Nebula.
        super().__init__({k: v for k, v in fields.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dict(self)


__all__ = ["RuntimeEnv", "RuntimeEnvConfig"]
