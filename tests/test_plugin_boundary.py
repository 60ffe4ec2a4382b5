"""Packages built on core use only its public API: no ``nebula._*`` import outside core.

What tune, rl, serve and data use must be what a third-party package can use, so a private
import anywhere in their source (installed code, benchmarks and examples alike) fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[1] / "packages"
DOMAIN_PACKAGES = sorted(p for p in PACKAGES.iterdir() if p.is_dir() and p.name != "core")


def private_core_imports(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` for each import of a ``nebula._*`` module in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if len(parts) > 1 and parts[0] == "nebula" and parts[1].startswith("_"):
                found.append((node.lineno, name))
                break
    return found


def test_the_scan_catches_each_spelling() -> None:
    source = (
        "import nebula._plugins.manager\n"
        "from nebula._config import X\n"
        "from nebula import _config\n"
        "from nebula.data._blocks import Block\n"
        "import nebula\n"
        "from nebula.plugins import hookimpl\n"
    )
    assert [line for line, _ in private_core_imports(source)] == [1, 2, 3]


def test_every_domain_package_is_scanned() -> None:
    assert {"data"} <= {package.name for package in DOMAIN_PACKAGES}


@pytest.mark.parametrize("package", DOMAIN_PACKAGES, ids=lambda p: p.name)
def test_no_private_core_import(package: Path) -> None:
    offenders = []
    for path in sorted(package.rglob("*.py")):
        for line, module in private_core_imports(path.read_text()):
            offenders.append(f"{path.relative_to(PACKAGES)}:{line} imports {module}")
    assert not offenders, "use nebula.plugins or the public API instead:\n" + "\n".join(offenders)
