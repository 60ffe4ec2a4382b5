"""Sampling domains: the values of a search space that are drawn rather than listed.

Every domain is an instance of :class:`Domain` and has ``sample()``, so other packages can
recognise one without importing the rest of tune. ``grid_search`` is not a domain: it is the
plain dict ``{"grid_search": [...]}``, which also lets a space be written in JSON or YAML.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Categorical",
    "Domain",
    "Float",
    "Function",
    "Integer",
    "RandomState",
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

RandomState = np.random.Generator | int | None
"""A generator to draw from, a seed for a new one, or None for fresh entropy."""


def _generator(random_state: RandomState) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


@dataclass(frozen=True)
class Uniform:
    """Draw evenly between the bounds."""


@dataclass(frozen=True)
class LogUniform:
    """Draw evenly between the logarithms of the bounds."""

    base: float = 10.0


@dataclass(frozen=True)
class Normal:
    """Draw from a normal distribution (the bounds are ignored)."""

    mean: float = 0.0
    sd: float = 1.0


Sampler = Uniform | LogUniform | Normal


class Domain:
    """A range of values to draw from; subclasses say which values and how."""

    def sample(
        self,
        config: dict[str, Any] | None = None,
        size: int = 1,
        random_state: RandomState = None,
    ) -> Any:
        """One value (``size=1``) or a list of ``size`` values."""
        rng = _generator(random_state)
        values = [self._draw(rng, config) for _ in range(size)]
        return values[0] if size == 1 else values

    def _draw(self, rng: np.random.Generator, config: dict[str, Any] | None) -> Any:
        raise NotImplementedError

    def is_grid(self) -> bool:
        return False


class _Numeric(Domain):
    def __init__(
        self, lower: float | None, upper: float | None, sampler: Sampler, q: float | None
    ) -> None:
        if lower is not None and upper is not None and not lower < upper:
            raise ValueError(f"a search range needs lower < upper, got [{lower}, {upper}).")
        if isinstance(sampler, LogUniform) and lower is not None and lower <= 0:
            raise ValueError(f"a log-scale range needs a positive lower bound, got {lower}.")
        if q is not None and q <= 0:
            raise ValueError(f"the quantization step q must be positive, got {q}.")
        self.lower = lower
        self.upper = upper
        self.sampler = sampler
        self.q = q

    def _continuous(self, rng: np.random.Generator, high: float | None) -> float:
        sampler = self.sampler
        if isinstance(sampler, Normal):
            return float(rng.normal(sampler.mean, sampler.sd))
        assert self.lower is not None and high is not None
        if isinstance(sampler, LogUniform):
            log = math.log(sampler.base)
            return float(
                sampler.base ** rng.uniform(math.log(self.lower) / log, math.log(high) / log)
            )
        return float(rng.uniform(self.lower, high))

    def _quantize(self, value: float) -> float:
        """The nearest multiple of q, kept inside the bounds (stepping inwards if needed)."""
        if self.q is None:
            return value
        q = self.q
        value = float(np.round(value / q) * q)
        if self.lower is not None and value < self.lower:
            value = math.ceil(self.lower / q) * q
        if self.upper is not None and value > self.upper:
            value = math.floor(self.upper / q) * q
        return value

    def __repr__(self) -> str:
        q = f", q={self.q}" if self.q is not None else ""
        return f"{type(self).__name__}({self.lower}, {self.upper}, {self.sampler}{q})"


class Float(_Numeric):
    """Real numbers between ``lower`` and ``upper`` (uniform, log-uniform or normal)."""

    def _draw(self, rng: np.random.Generator, config: dict[str, Any] | None) -> float:
        return self._quantize(self._continuous(rng, self.upper))


class Integer(_Numeric):
    """Integers in ``[lower, upper)``, or ``[lower, upper]`` when quantized (as Ray's are)."""

    def __init__(self, lower: int, upper: int, sampler: Sampler, q: int | None) -> None:
        super().__init__(lower, upper, sampler, q)

    def _draw(self, rng: np.random.Generator, config: dict[str, Any] | None) -> int:
        assert self.lower is not None and self.upper is not None
        if isinstance(self.sampler, Uniform) and self.q is None:
            return int(rng.integers(int(self.lower), int(self.upper)))
        value = self._continuous(rng, self.upper)
        if self.q is None:
            return int(min(math.floor(value), self.upper - 1))
        return round(self._quantize(value))


class Categorical(Domain):
    """One of a list of values, each equally likely."""

    def __init__(self, categories: Sequence[Any]) -> None:
        categories = list(categories)
        if not categories:
            raise ValueError("choice() needs at least one category.")
        self.categories = categories

    def _draw(self, rng: np.random.Generator, config: dict[str, Any] | None) -> Any:
        return self.categories[int(rng.integers(len(self.categories)))]

    def __len__(self) -> int:
        return len(self.categories)

    def __repr__(self) -> str:
        return f"Categorical({self.categories!r})"


class _AttributeDict(dict[str, Any]):
    """The config seen by ``sample_from`` functions: ``spec.config.lr`` and ``["lr"]`` both work."""

    def __getattr__(self, name: str) -> Any:
        try:
            value = self[name]
        except KeyError:
            raise AttributeError(name) from None
        return _AttributeDict(value) if isinstance(value, dict) else value


class _Spec:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = _AttributeDict(config)


class Function(Domain):
    """A value computed by a function, optionally from the rest of the resolved config."""

    def __init__(self, func: Callable[..., Any]) -> None:
        if not callable(func):
            raise TypeError(f"sample_from() needs a callable, got {type(func).__name__}.")
        self.func = func
        self.takes_spec = _takes_argument(func)

    def _draw(self, rng: np.random.Generator, config: dict[str, Any] | None) -> Any:
        if self.takes_spec:
            return self.func(_Spec(config or {}))
        return self.func()

    def __repr__(self) -> str:
        return f"Function({getattr(self.func, '__name__', self.func)!r})"


def _takes_argument(func: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters
    )


def uniform(lower: float, upper: float) -> Float:
    return Float(lower, upper, Uniform(), None)


def quniform(lower: float, upper: float, q: float) -> Float:
    return Float(lower, upper, Uniform(), q)


def loguniform(lower: float, upper: float, base: float = 10) -> Float:
    return Float(lower, upper, LogUniform(base), None)


def qloguniform(lower: float, upper: float, q: float, base: float = 10) -> Float:
    return Float(lower, upper, LogUniform(base), q)


def randn(mean: float = 0.0, sd: float = 1.0) -> Float:
    return Float(None, None, Normal(mean, sd), None)


def qrandn(mean: float, sd: float, q: float) -> Float:
    return Float(None, None, Normal(mean, sd), q)


def randint(lower: int, upper: int) -> Integer:
    """An integer in ``[lower, upper)``."""
    return Integer(lower, upper, Uniform(), None)


def qrandint(lower: int, upper: int, q: int = 1) -> Integer:
    """A multiple of ``q`` in ``[lower, upper]``."""
    return Integer(lower, upper, Uniform(), q)


def lograndint(lower: int, upper: int, base: float = 10) -> Integer:
    """An integer in ``[lower, upper)``, drawn evenly on a log scale."""
    return Integer(lower, upper, LogUniform(base), None)


def qlograndint(lower: int, upper: int, q: int, base: float = 10) -> Integer:
    return Integer(lower, upper, LogUniform(base), q)


def choice(categories: Sequence[Any]) -> Categorical:
    return Categorical(categories)


def sample_from(func: Callable[..., Any]) -> Function:
    """A value computed by ``func(spec)`` (``spec.config`` is the resolved config) or ``func()``."""
    return Function(func)


def grid_search(values: Iterable[Any]) -> dict[str, list[Any]]:
    """Try every one of ``values``: each is crossed with the other grids and with num_samples."""
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise TypeError(f"grid_search() needs a list of values, got {type(values).__name__}.")
    listed = list(values)
    if not listed:
        raise ValueError("grid_search() needs at least one value.")
    return {"grid_search": listed}
