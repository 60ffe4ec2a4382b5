"""``@nebula.remote`` on a function: a ``RemoteFunction`` whose calls become tasks."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from nebula._api import options as opts
from nebula._ids import random_id

P = ParamSpec("P")
R = TypeVar("R")


class RemoteFunction(Generic[P, R]):
    """A function whose ``.remote(...)`` calls run as tasks on the cluster."""

    def __init__(self, function: Callable[P, R], options: dict[str, Any]) -> None:
        self._function = function
        self._options = opts.task_options(options)
        self._function_id = random_id(16)
        self._pickled: bytes | None = None
        self._is_generator = inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(
            function
        )
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Remote function {self._function.__qualname__} cannot be called directly; "
            f"use {self._function.__name__}.remote(...) to run it as a task."
        )

    def remote(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self._remote(args, kwargs, self._options)

    def options(self, **options: Any) -> _FunctionWithOptions[P, R]:
        return _FunctionWithOptions(self, self._options.merged(options))

    def _remote(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], options: opts.TaskOptions
    ) -> Any:
        from nebula._api import runtime

        num_returns = options.num_returns
        streaming = num_returns == "streaming" or (self._is_generator and num_returns is None)
        if num_returns == "streaming" and not self._is_generator:
            raise TypeError(
                f"num_returns='streaming' needs a generator function; "
                f"{self._function.__qualname__} does not yield."
            )
        if self._pickled is None:
            from nebula._serialization import dumps_function

            self._pickled = dumps_function(self._function)
        return runtime.submit_task(
            name=self._function.__qualname__,
            function_id=self._function_id,
            function_bytes=self._pickled,
            args=args,
            kwargs=kwargs,
            options=options,
            streaming=streaming,
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pickled"] = None
        return state

    def __repr__(self) -> str:
        return f"RemoteFunction({self._function.__module__}.{self._function.__qualname__})"


class _FunctionWithOptions(Generic[P, R]):
    def __init__(self, function: RemoteFunction[P, R], options: opts.TaskOptions) -> None:
        self._function = function
        self._options = options

    def remote(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self._function._remote(args, kwargs, self._options)

    def options(self, **options: Any) -> _FunctionWithOptions[P, R]:
        return _FunctionWithOptions(self._function, self._options.merged(options))
