"""``@nebula.remote`` on a class: ``ActorClass``, ``ActorHandle`` and ``nebula.method``."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from nebula import _protocol as p
from nebula._api import options as opts
from nebula._serialization import record_serialized_ref

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_META_ATTR = "__nebula_method_meta__"
# num_returns of a generator method in an actor's method table: its call gives an
# ObjectRefGenerator.
STREAMING = -1
_METHOD_OPTIONS = frozenset(
    {"num_returns", "concurrency_group", "max_task_retries", "retry_exceptions"}
)


def _check_num_returns(num_returns: Any) -> int:
    if num_returns == "streaming":
        return STREAMING
    return opts.check_num_returns_count(num_returns)


def _method_meta_with(meta: p.MethodMeta, options: dict[str, Any], where: str) -> p.MethodMeta:
    changes: dict[str, Any] = {}
    for key, value in options.items():
        if key not in _METHOD_OPTIONS:
            raise opts.unknown_keyword(key, _METHOD_OPTIONS, where)
        if key == "num_returns":
            changes[key] = _check_num_returns(value)
        elif key == "concurrency_group":
            if not isinstance(value, str) or not value:
                raise ValueError(f"concurrency_group must be a group's name, got {value!r}.")
            changes[key] = value
        elif key == "max_task_retries":
            changes[key] = None if value is None else opts.RETRIES("max_task_retries", value)
        else:
            changes[key] = opts.check_retry_exceptions(key, value)
    return dataclasses.replace(meta, **changes)


def method(**options: Any) -> Callable[[F], F]:
    """Declare per-method options on an actor method: ``@nebula.method(num_returns=2)``.

    Takes ``num_returns``, ``concurrency_group`` (a group of the actor's
    ``concurrency_groups``), ``max_task_retries`` and ``retry_exceptions``.
    """
    meta = _method_meta_with(p.MethodMeta(), options, "nebula.method()'s options")

    def decorate(fn: F) -> F:
        setattr(fn, _META_ATTR, meta)
        return fn

    return decorate


def method_meta(cls: type) -> dict[str, p.MethodMeta]:
    meta: dict[str, p.MethodMeta] = {}
    for name, member in inspect.getmembers(cls):
        if name.startswith("__") and name != "__call__":
            continue
        if callable(member):
            declared = getattr(member, _META_ATTR, None)
            if declared is not None:
                meta[name] = declared
            elif inspect.isgeneratorfunction(member) or inspect.isasyncgenfunction(member):
                meta[name] = p.MethodMeta(num_returns=STREAMING)
            else:
                meta[name] = _DEFAULT_META
    return meta


_DEFAULT_META = p.MethodMeta()


def _is_async(cls: type) -> bool:
    return any(
        inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
        for _, member in inspect.getmembers(cls)
    )


def _check_groups(cls: type, options: opts.ActorOptions, meta: dict[str, p.MethodMeta]) -> None:
    """Every group a method names must be one of the actor's concurrency groups."""
    for name, declared in meta.items():
        group = declared.concurrency_group
        if group and group not in options.concurrency_groups:
            known = ", ".join(sorted(options.concurrency_groups)) or "none"
            raise ValueError(
                f"{cls.__name__}.{name} runs in concurrency group {group!r}, which the actor "
                f"does not declare (its concurrency_groups: {known})."
            )


class ActorClass:
    """A class whose ``.remote(...)`` starts an actor: a process holding one instance."""

    def __init__(self, cls: type, options: dict[str, Any]) -> None:
        self._cls = cls
        self._options = opts.actor_options(options)
        self._method_meta = method_meta(cls)
        _check_groups(cls, self._options, self._method_meta)
        self._is_async = _is_async(cls)
        self._pickled: bytes | None = None
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__module__ = cls.__module__
        self.__doc__ = cls.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Actor class {self._cls.__name__} cannot be instantiated directly; "
            f"use {self._cls.__name__}.remote(...) to start an actor."
        )

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        return self._remote(args, kwargs, self._options)

    def options(self, **options: Any) -> _ActorClassWithOptions:
        merged = self._options.merged(options)
        _check_groups(self._cls, merged, self._method_meta)
        return _ActorClassWithOptions(self, merged)

    def _remote(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], options: opts.ActorOptions
    ) -> ActorHandle:
        from nebula._api import runtime

        if self._pickled is None:
            from nebula._serialization import dumps_function

            self._pickled = dumps_function(self._cls)
        return runtime.create_actor(
            class_name=self._cls.__name__,
            class_bytes=self._pickled,
            method_meta=self._method_meta,
            is_async=self._is_async,
            args=args,
            kwargs=kwargs,
            options=options,
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_pickled"] = None
        return state

    def __repr__(self) -> str:
        return f"ActorClass({self._cls.__module__}.{self._cls.__qualname__})"


class _ActorClassWithOptions:
    def __init__(self, actor_class: ActorClass, options: opts.ActorOptions) -> None:
        self._actor_class = actor_class
        self._options = options

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        return self._actor_class._remote(args, kwargs, self._options)


class ActorHandle:
    """A handle to an actor. Pass it to tasks and other actors; call ``handle.method.remote()``.

    Handles cannot be constructed by users: ``Cls.remote()`` and ``nebula.get_actor()`` make them.
    """

    def __init__(
        self,
        actor_id: bytes,
        owner_address: str,
        class_name: str,
        method_meta: dict[str, p.MethodMeta],
        max_task_retries: int = 0,
        max_pending_calls: int = -1,
    ) -> None:
        from nebula._api import runtime

        self._max_task_retries = max_task_retries
        self._max_pending_calls = max_pending_calls
        self._actor_id = actor_id
        self._owner = owner_address
        self._class_name = class_name
        self._method_meta = method_meta
        self._cw = runtime.core_worker_or_none()
        if self._cw is not None:
            self._cw.add_local_ref(actor_id, owner_address, is_actor=True)

    def __del__(self) -> None:
        cw = self.__dict__.get("_cw")
        if cw is not None:
            cw.release_local_ref(self._actor_id)

    def __getattr__(self, name: str) -> ActorMethod:
        meta = self.__dict__.get("_method_meta")
        if meta is None or name.startswith("__"):
            raise AttributeError(name)
        if name not in meta:
            raise AttributeError(
                f"Actor {self._class_name} has no method {name!r}; "
                f"its methods are: {', '.join(sorted(meta))}."
            )
        return ActorMethod(self, name, meta[name])

    @property
    def actor_id(self) -> bytes:
        return self._actor_id

    @property
    def owner_address(self) -> str:
        return self._owner

    @property
    def object_id(self) -> bytes:
        return self._actor_id

    def __repr__(self) -> str:
        return f"Actor({self._class_name}, {self._actor_id.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id

    def __hash__(self) -> int:
        return hash(self._actor_id)

    def __reduce__(self) -> tuple[Any, ...]:
        record_serialized_ref(self)
        return (
            ActorHandle,
            (
                self._actor_id,
                self._owner,
                self._class_name,
                self._method_meta,
                self._max_task_retries,
                self._max_pending_calls,
            ),
        )


class ActorMethod:
    """``handle.method``: call ``.remote(...)`` on it."""

    def __init__(self, handle: ActorHandle, name: str, meta: p.MethodMeta) -> None:
        self._handle = handle
        self._name = name
        self._meta = meta

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"Actor methods cannot be called directly; use .{self._name}.remote(...).")

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        from nebula._api import runtime

        return runtime.submit_actor_task(self._handle, self._name, args, kwargs, self._meta)

    def options(self, **options: Any) -> ActorMethod:
        """This call's ``num_returns``, ``concurrency_group``, ``max_task_retries`` or
        ``retry_exceptions``, instead of the method's own."""
        where = f"{self._handle._class_name}.{self._name}.options()"
        return ActorMethod(self._handle, self._name, _method_meta_with(self._meta, options, where))
