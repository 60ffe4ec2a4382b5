"""The reporting half of ``ray.train`` that Tune scripts import.

Ray Tune programs often write ``from ray import train`` and call ``train.report(...)``,
``train.get_checkpoint()``, ``train.RunConfig(...)`` or ``train.Checkpoint`` inside a function
trainable. With ``nebula-tune`` installed, ``from nebula import train`` gives the same names,
which are ``nebula.tune``'s own::

    from nebula import train, tune

    def objective(config):
        for step in range(10):
            train.report({"score": config["x"] * step})

    tune.Tuner(objective, param_space={"x": tune.uniform(0, 1)},
               run_config=train.RunConfig(name="sweep")).fit()

Distributed training loops (Ray Train's trainers) are not part of Nebula.
"""

from __future__ import annotations

from typing import Any

import nebula.tune as _tune

__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "Result",
    "RunConfig",
    "SyncConfig",
    "get_checkpoint",
    "get_context",
    "report",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(_tune, name)
        globals()[name] = value
        return value
    if name.endswith("Trainer"):
        raise AttributeError(
            f"nebula.train.{name}: distributed trainers are not part of Nebula; "
            "nebula.train only carries the reporting API that Tune trainables use"
        )
    raise AttributeError(f"module 'nebula.train' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
