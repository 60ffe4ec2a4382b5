"""Settings of an algorithm config: each one named, defaulted and checked when it is set.

A config section (``training``, ``env_runners``...) is a table of :class:`Setting`; a value is
checked at the call that sets it, so a typo or a bad value fails where it was written, with
the closest valid name. Tune search spaces (``{"grid_search": [...]}`` or a sampler object
from ``nebula.tune``) pass through unchecked: tune resolves them before the config is used.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any], "str | None"]


class ConfigError(ValueError):
    """A setting of an algorithm config has a value it cannot take."""


class UnknownSettingError(ConfigError, TypeError):
    """A setting name that the config section does not know (usually a typo)."""


@dataclass(frozen=True)
class Setting:
    """One named setting: its section, default and the check its values must pass."""

    name: str
    section: str
    default: Any
    check: Check


def closest(name: str, choices: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return matches[0] if matches else None


def unknown_setting(section: str, name: str, choices: Iterable[str]) -> UnknownSettingError:
    choices = sorted(choices)
    guess = closest(name, choices)
    hint = f"did you mean {guess!r}?" if guess else f"valid settings: {', '.join(choices)}"
    return UnknownSettingError(f"{section}() has no setting {name!r}; {hint}")


def is_search_space(value: Any) -> bool:
    """A value tune resolves per trial: a grid search dict or a ``nebula.tune`` sampler."""
    if isinstance(value, dict) and set(value) == {"grid_search"}:
        return True
    sample = getattr(type(value), "sample", None)
    module = getattr(type(value), "__module__", "") or ""
    return callable(sample) and module.startswith("nebula.tune")


def validate(setting: Setting, value: Any) -> Any:
    if is_search_space(value):
        return value
    problem = setting.check(value)
    if problem is not None:
        raise ConfigError(
            f"{setting.section}({setting.name}={value!r}): {setting.name} must be {problem}"
        )
    return value


# ---- checks: each returns None when the value is fine, else what the value must be ----


def anything(value: Any) -> str | None:
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def number(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    allow_inf: bool = False,
) -> Check:
    """A real number in range; ``allow_inf`` also takes ``float("inf")`` (as "no limit")."""
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {lo}")
    if hi is not None:
        parts.append(f"<= {hi}")
    text = "a number" + (" " + " and ".join(parts) if parts else "")

    def check(value: Any) -> str | None:
        if allow_inf and value == math.inf and not isinstance(value, bool):
            return None
        if not _is_number(value):
            return text
        if lo is not None and (value <= lo if lo_open else value < lo):
            return text
        if hi is not None and value > hi:
            return text
        return None

    return check


def integer(lo: int | None = None) -> Check:
    text = "an integer" + (f" >= {lo}" if lo is not None else "")

    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return text
        if lo is not None and value < lo:
            return text
        return None

    return check


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "True or False"


def one_of(*choices: Any) -> Check:
    def check(value: Any) -> str | None:
        if value in choices:
            return None
        text = "one of " + ", ".join(repr(c) for c in choices)
        if isinstance(value, str):
            guess = closest(value, [c for c in choices if isinstance(c, str)])
            if guess:
                text += f" (did you mean {guess!r}?)"
        return text

    return check


def optional(check: Check) -> Check:
    def wrapped(value: Any) -> str | None:
        if value is None:
            return None
        problem = check(value)
        return None if problem is None else f"None or {problem}"

    return wrapped


def either(*checks: Check) -> Check:
    def wrapped(value: Any) -> str | None:
        problems = [c(value) for c in checks]
        if any(p is None for p in problems):
            return None
        return " or ".join(p for p in problems if p)

    return wrapped


def int_list(value: Any) -> str | None:
    ok = isinstance(value, (list, tuple)) and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value
    )
    return None if ok else "a list of positive integers"


def mapping(value: Any) -> str | None:
    return None if isinstance(value, dict) else "a dict"


def callable_value(value: Any) -> str | None:
    return None if callable(value) else "callable"


def schedule(value: Any) -> str | None:
    """A number, or ``[[timestep, value], ...]`` pieces interpolated linearly."""
    if _is_number(value):
        return None
    ok = (
        isinstance(value, (list, tuple))
        and value
        and all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(_is_number(x) for x in p)
            for p in value
        )
    )
    return None if ok else "a number or a list of [timestep, value] pairs"


def interpolate(value: Any, t: float) -> float:
    """The value of a :func:`schedule` at timestep ``t`` (piecewise linear, flat at the ends)."""
    if _is_number(value):
        return float(value)
    points = sorted((float(a), float(b)) for a, b in value)
    if t <= points[0][0]:
        return points[0][1]
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t <= t1:
            return v0 + (v1 - v0) * (t - t0) / max(t1 - t0, 1e-12)
    return points[-1][1]


class _NotProvided:
    def __repr__(self) -> str:
        return "NotProvided"


NOT_PROVIDED: Any = _NotProvided()
"""Marks a positional section argument the caller left out."""
