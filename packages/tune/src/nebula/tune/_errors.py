"""Errors tune raises: ``TuneError`` for the sweep, ``TrialError`` for one failed trial."""

from __future__ import annotations

from typing import Any

__all__ = ["TrialError", "TuneError"]


class TuneError(Exception):
    """A sweep could not run or finish as asked."""


class TrialError(TuneError):
    """A trial failed; ``traceback_str`` is its remote traceback, ``cause`` the exception."""

    def __init__(
        self, trial_id: str, traceback_str: str, cause: BaseException | None = None
    ) -> None:
        self.trial_id = trial_id
        self.traceback_str = traceback_str
        self.cause = cause
        super().__init__(f"trial {trial_id} failed:\n{traceback_str}".rstrip())

    def __reduce__(self) -> tuple[Any, ...]:
        return (TrialError, (self.trial_id, self.traceback_str, self.cause))
