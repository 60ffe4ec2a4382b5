"""TensorBoard event files per trial (needs ``tensorboardX``: ``nebula-tune[tensorboard]``).

Each result becomes one event holding all its scalars, written with tensorboardX's record
framing straight from the driver's loop: no writer thread and no fsync per flush, which
would otherwise cost more than the rest of a fast sweep. The event itself is encoded here
(a few fixed protobuf fields: wall time, step, and tag/value pairs) because building
protobuf objects field by field costs more per result than everything else the driver does.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

from nebula.tune._util import flatten_metrics
from nebula.tune.logger._logger import LoggerCallback

if TYPE_CHECKING:
    from nebula.tune._trial import Trial

__all__ = ["TBXLoggerCallback", "tensorboardx_available"]

_SKIP = {
    "training_iteration",
    "timestamp",
    "pid",
    "done",
    "trial_id",
    "date",
    "hostname",
    "node_ip",
    "iterations_since_restore",
}


def tensorboardx_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboardX") is not None


class TBXLoggerCallback(LoggerCallback):
    """Scalars of every result under ``tune/<metric>``, stepped by ``training_iteration``."""

    def __init__(self) -> None:
        self._writers: dict[str, Any] = {}
        self._modules: Any = None
        self._tags: dict[str, bytes] = {}

    def _load(self) -> Any:
        if self._modules is None:
            # tensorboardX tries boto3 for its own S3 writer, unused here, and importing boto3
            # costs half a second: hide it for the duration of the import.
            hide_boto3 = "boto3" not in sys.modules
            if hide_boto3:
                sys.modules["boto3"] = None  # type: ignore[assignment]
            try:
                from tensorboardX.proto.event_pb2 import Event
                from tensorboardX.proto.summary_pb2 import Summary
                from tensorboardX.record_writer import RecordWriter
            except ImportError:
                raise ImportError(
                    "TBXLoggerCallback needs tensorboardX; install it with "
                    "`pip install nebula-tune[tensorboard]`."
                ) from None
            finally:
                if hide_boto3:
                    del sys.modules["boto3"]
            self._modules = (Event, Summary, RecordWriter)
        return self._modules

    def _writer(self, trial: Trial) -> Any:
        writer = self._writers.get(trial.trial_id)
        if writer is None:
            event_class, _, record_writer = self._load()
            os.makedirs(trial.local_path, exist_ok=True)
            name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}"
            writer = record_writer(os.path.join(trial.local_path, name))
            writer.write(
                event_class(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
            )
            self._writers[trial.trial_id] = writer
        return writer

    def log_trial_result(self, iteration: int, trial: Trial, result: dict[str, Any]) -> None:
        writer = self._writer(trial)
        values = []
        tags = self._tags
        for key, value in flatten_metrics(result).items():
            if key in _SKIP or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            prefix = tags.get(key)
            if prefix is None:
                prefix = tags[key] = _value_prefix(f"tune/{key}")
            values.append(prefix + _pack_float(value))
        step = int(result.get("training_iteration", iteration))
        writer.write(_event(time.time(), step, b"".join(values)))

    def flush(self) -> None:
        for writer in self._writers.values():
            writer._writer.flush()

    def log_trial_end(self, trial: Trial, failed: bool = False) -> None:
        writer = self._writers.pop(trial.trial_id, None)
        if writer is not None:
            writer.close()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


_FLOAT_VALUE_FIELD = b"\x15"  # Summary.Value.simple_value: field 2, 32-bit
_pack_float = struct.Struct("<f").pack
_pack_double = struct.Struct("<d").pack


def _varint(number: int) -> bytes:
    out = bytearray()
    number &= (1 << 64) - 1
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _value_prefix(tag: str) -> bytes:
    """A ``Summary.Value`` message up to its 4-byte float: the same bytes for every result."""
    tag_field = _length_field(1, tag.encode())
    return b"\x0a" + _varint(len(tag_field) + 5) + tag_field + _FLOAT_VALUE_FIELD


def _length_field(field: int, payload: bytes) -> bytes:
    return bytes([field << 3 | 2]) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int, summary_values: bytes) -> bytes:
    """An ``Event`` with ``wall_time`` (1), ``step`` (2) and ``summary`` (5)."""
    return (
        b"\x09"
        + _pack_double(wall_time)
        + b"\x10"
        + _varint(step)
        + _length_field(5, summary_values)
    )
