"""Logger callbacks: each trial's results as JSON lines, CSV rows and TensorBoard events."""

from __future__ import annotations

from nebula.tune.logger._csv import CSVLoggerCallback
from nebula.tune.logger._json import JsonLoggerCallback
from nebula.tune.logger._logger import LoggerCallback
from nebula.tune.logger._tensorboard import TBXLoggerCallback

__all__ = ["CSVLoggerCallback", "JsonLoggerCallback", "LoggerCallback", "TBXLoggerCallback"]
