"""Waiting for a condition instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for_condition(
    predicate: Callable[..., Any],
    timeout: float = 10.0,
    retry_interval_ms: float = 50,
    **kwargs: Any,
) -> None:
    """Poll ``predicate(**kwargs)`` until it is truthy; raise ``RuntimeError`` on timeout."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if predicate(**kwargs):
                return
        except Exception as exc:
            last_error = exc
        time.sleep(retry_interval_ms / 1000)
    message = f"The condition was not met within {timeout} s."
    if last_error is not None:
        message += f" Last error: {last_error!r}"
    raise RuntimeError(message)
