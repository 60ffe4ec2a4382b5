"""Find what keeps a value from being sent to a task: ``inspect_serializability`` tries the
value, then its members (closure variables and globals of functions, attributes of
objects), and names the innermost ones that fail."""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple, TextIO

import cloudpickle


class FailureTuple(NamedTuple):
    obj: Any
    name: str
    parent: Any


def _fails(obj: Any) -> bool:
    try:
        cloudpickle.dumps(obj)
    except Exception:
        return True
    return False


def _members(obj: Any) -> list[tuple[str, Any]]:
    if inspect.isfunction(obj):
        closure = inspect.getclosurevars(obj)
        return [*closure.nonlocals.items(), *closure.globals.items()]
    if inspect.isclass(obj):
        return [(k, v) for k, v in vars(obj).items() if not k.startswith("__")]
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        return list(state.items())
    if isinstance(obj, dict):
        return [(repr(k), v) for k, v in obj.items()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"[{i}]", v) for i, v in enumerate(obj)]
    return []


def inspect_serializability(
    base_obj: Any, name: str | None = None, depth: int = 3, print_file: TextIO | None = None
) -> tuple[bool, set[FailureTuple]]:
    """``(True, set())`` when ``base_obj`` pickles; else ``(False, failures)`` where each
    failure names a member (down to ``depth`` levels) that does not pickle by itself."""
    label = str(name or getattr(base_obj, "__qualname__", type(base_obj).__name__))
    if not _fails(base_obj):
        return True, set()
    failures: set[FailureTuple] = set()

    def walk(obj: Any, obj_name: str, level: int) -> None:
        found = False
        if level < depth:
            for member_name, member in _members(obj):
                if _fails(member):
                    found = True
                    walk(member, member_name, level + 1)
        if not found:
            try:
                failures.add(FailureTuple(obj, obj_name, None))
            except TypeError:  # unhashable: name it by its repr
                failures.add(FailureTuple(repr(obj), obj_name, None))
            print(f"{obj_name} ({type(obj).__name__}) cannot be serialized", file=print_file)

    walk(base_obj, label, 0)
    return False, failures
