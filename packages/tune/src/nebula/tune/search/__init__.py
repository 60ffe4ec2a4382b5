"""Search spaces and search algorithms.

Sampling domains (``uniform``, ``choice``...) are instances of :class:`Domain` with a
``sample()`` method; ``grid_search`` returns the plain dict ``{"grid_search": [...]}``.
"""

from __future__ import annotations

from nebula.tune.search._algorithms import (
    BasicVariantGenerator,
    SearchAlgorithm,
    SearchGenerator,
    Suggestion,
)
from nebula.tune.search._sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from nebula.tune.search._searcher import ConcurrencyLimiter, Repeater, Searcher
from nebula.tune.search.optuna import OptunaSearch

__all__ = [
    "BasicVariantGenerator",
    "Categorical",
    "ConcurrencyLimiter",
    "Domain",
    "Float",
    "Function",
    "Integer",
    "OptunaSearch",
    "Repeater",
    "SearchAlgorithm",
    "SearchGenerator",
    "Searcher",
    "Suggestion",
    "choice",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "sample_from",
    "uniform",
]
