"""Core's layers point one way: the kernel never imports the public API built on it, and
the control store never imports the node manager or the worker.

Checked on the source (every import, including those inside functions), so a cycle
cannot come back unnoticed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "nebula"

KERNEL = [
    "_worker",
    "_node_manager",
    "_control_store",
    "_object_store",
    "_scheduler",
    "_transport.py",
    "_protocol",
    "_serialization.py",
    "_ids.py",
    "_runtime_env.py",
]
# The public face and what is built on it: the kernel must not reach up into these.
UPPER = ("nebula._api", "nebula.util", "nebula.testing", "nebula.actor", "nebula._cli")
FORBIDDEN = {
    **{part: UPPER for part in KERNEL},
    "_control_store": (*UPPER, "nebula._node_manager", "nebula._worker"),
    "_scheduler": (*UPPER, "nebula._node_manager", "nebula._control_store", "nebula._worker"),
}


def imported_modules(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` for every import; ``from a import b`` yields ``a.b``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def _files(part: str) -> list[Path]:
    path = SOURCE / part
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def test_the_scan_sees_imports_inside_functions() -> None:
    source = "def f():\n    from nebula._api import runtime\nimport nebula\n"
    assert imported_modules(source) == [(3, "nebula"), (2, "nebula._api.runtime")]


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_layer_does_not_import_upwards(part: str) -> None:
    forbidden = FORBIDDEN[part]
    offenders = []
    for path in _files(part):
        for line, module in imported_modules(path.read_text()):
            if module == "nebula" or module.startswith(tuple(f"{f}" for f in forbidden)):
                offenders.append(f"{path.relative_to(SOURCE)}:{line} imports {module}")
    assert not offenders, "\n".join(offenders)
