"""The standard library's ``multiprocessing`` pool API, run on Nebula actors.

``TimeoutError`` is the standard library's own class, so ``except multiprocessing.TimeoutError``
keeps working after switching the import.
"""

from __future__ import annotations

from multiprocessing import TimeoutError

from nebula.util.multiprocessing.pool import Pool

__all__ = ["Pool", "TimeoutError"]
