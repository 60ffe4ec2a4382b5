"""The message base classes and the one encoding every message goes through."""

from __future__ import annotations

import operator
import pickle
from collections.abc import Callable
from dataclasses import fields
from typing import Any


class Message:
    __slots__ = ()


class CompactMessage(Message):
    """A message sent in bulk (one entry per node in a cluster view, a heartbeat from
    every node each second): pickled as its class and its field values, which encodes and
    decodes in about half the time of a slotted dataclass's default state dictionary."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        cls = type(self)
        get = _FIELD_GETTERS.get(cls)
        if get is None:
            get = _FIELD_GETTERS[cls] = _field_getter(cls)
        return cls, get(self)


def _field_getter(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    names = [f.name for f in fields(cls)]
    if len(names) == 1:
        return lambda message: (getattr(message, names[0]),)
    return operator.attrgetter(*names)


_FIELD_GETTERS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


class ProtocolError(Exception):
    """A payload was malformed, truncated or of an unknown type."""


def encode(message: Message) -> bytes:
    return pickle.dumps(message, protocol=5)


def encode_entry(value: Any) -> bytes:
    """Encode a plain value (a dict of floats, say) carried pre-encoded inside a message,
    so that one encoding serves every message that carries it."""
    return pickle.dumps(value, protocol=5)


def decode_entry(payload: bytes) -> Any:
    try:
        return pickle.loads(payload)
    except Exception as exc:
        raise ProtocolError(f"undecodable entry ({len(payload)} bytes): {exc!r}") from None


def decode(payload: bytes | memoryview) -> Message:
    try:
        message = pickle.loads(payload)
    except Exception as exc:
        raise ProtocolError(f"undecodable message ({len(payload)} bytes): {exc!r}") from None
    if not isinstance(message, Message):
        raise ProtocolError(f"not a protocol message: {type(message).__name__}")
    return message
