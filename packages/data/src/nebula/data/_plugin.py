"""nebula-data's hook implementations (found through the ``nebula.plugins`` entry point)."""

from __future__ import annotations

from nebula.hookspecs import OperatorRegistry, hookimpl


@hookimpl
def nebula_register_operators(registry: OperatorRegistry) -> None:
    """Data operators and optimizer rules are registered here as they are built."""
    del registry
