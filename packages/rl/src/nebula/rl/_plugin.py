"""nebula-rl's hook implementations (found through the ``nebula.plugins`` entry point).

Importing this module stays cheap: torch and gymnasium load only inside the hooks' work.
"""

from __future__ import annotations

from typing import Any

from nebula.plugins import CommandRegistry, hookimpl

ALGORITHMS = {
    "PPO": ("nebula.rl._ppo", "PPO"),
    "DQN": ("nebula.rl._dqn", "DQN"),
    "IMPALA": ("nebula.rl._impala", "IMPALA"),
    "SAC": ("nebula.rl._sac", "SAC"),
}


def algorithm_class(name: str) -> Any:
    import importlib

    module, attr = ALGORITHMS[name]
    return getattr(importlib.import_module(module), attr)


@hookimpl
def nebula_register_cli(commands: CommandRegistry) -> None:
    from nebula.rl import _cli

    commands.add("rl", help=_cli.HELP, configure=_cli.configure, run=_cli.run)


@hookimpl(optionalhook=True)
def nebula_register_tune_trainables(registry: Any) -> None:
    """Make "PPO", "DQN", "IMPALA" and "SAC" usable as tune trainables by name."""
    for name in ALGORITHMS:
        registry.add(name, algorithm_class(name))
