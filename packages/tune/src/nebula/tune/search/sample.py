"""The sampling domains under the module name Ray programs import them from."""

from __future__ import annotations

from nebula.tune.search._sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    LogUniform,
    Normal,
    Uniform,
)

__all__ = [
    "Categorical",
    "Domain",
    "Float",
    "Function",
    "Integer",
    "LogUniform",
    "Normal",
    "Uniform",
]
