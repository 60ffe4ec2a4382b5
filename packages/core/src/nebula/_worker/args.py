"""Packing a call's arguments: one pickle for the values, ObjectRefs resolved separately.

Top-level ObjectRef arguments are replaced by placeholders so the owner can resolve them
before the task runs; refs nested inside containers stay refs, as users expect. Arguments
that take more than ``ARGS_INLINE_MAX_BYTES`` go to the object store as one more ref
argument, so a call with thousands of large values never makes a message too large.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nebula import _config
from nebula._serialization import Serialized, serialize


class ArgRef:
    """Stands in for the ``index``-th top-level ObjectRef argument."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple[Any, ...]:
        return (ArgRef, (self.index,))


class ArgsInStore:
    """Stands in for the whole (args, kwargs) pickle, stored as the ``index``-th ref."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> tuple[Any, ...]:
        return (ArgsInStore, (self.index,))


_NO_ARGS: Serialized | None = None


def pack_args(
    args: tuple[Any, ...], kwargs: dict[str, Any], ref_type: type
) -> tuple[Serialized, list[Any]]:
    global _NO_ARGS
    if not args and not kwargs:  # common for actor method calls: pickle it once
        if _NO_ARGS is None:
            _NO_ARGS = serialize(((), {}))
        return _NO_ARGS, []
    refs: list[Any] = []

    def swap(value: Any) -> Any:
        if type(value) is ref_type:
            refs.append(value)
            return ArgRef(len(refs) - 1)
        return value

    packed_args = tuple(swap(a) for a in args)
    packed_kwargs = {k: swap(v) for k, v in kwargs.items()}
    return serialize((packed_args, packed_kwargs)), refs


def args_blob(serialized: Serialized, refs: list[Any], put: Callable[[Serialized], Any]) -> bytes:
    """The bytes a call's spec carries for its arguments; ``put`` stores large ones and
    returns their ref, which joins ``refs``."""
    if serialized.total_size <= _config.ARGS_INLINE_MAX_BYTES:
        return serialized.to_bytes()
    refs.append(put(serialized))
    return serialize(ArgsInStore(len(refs) - 1)).to_bytes()


def unpack_args(
    packed: tuple[tuple[Any, ...], dict[str, Any]] | ArgsInStore, values: list[Any]
) -> tuple[list[Any], dict[str, Any]]:
    if type(packed) is ArgsInStore:
        packed = values[packed.index]
    args, kwargs = packed  # type: ignore[misc]

    def fill(value: Any) -> Any:
        return values[value.index] if type(value) is ArgRef else value

    return [fill(a) for a in args], {k: fill(v) for k, v in kwargs.items()}
