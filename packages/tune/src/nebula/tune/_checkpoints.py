"""Which of a trial's checkpoints to keep (``CheckpointConfig.num_to_keep`` and its score)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nebula.tune._checkpoint import Checkpoint

__all__ = ["CheckpointRecord", "CheckpointShelf"]


@dataclass
class CheckpointRecord:
    checkpoint: Checkpoint
    metrics: dict[str, Any]
    order: int


@dataclass
class CheckpointShelf:
    """A trial's kept checkpoints; the latest is always kept, since a restart needs it."""

    num_to_keep: int | None = None
    score_attribute: str | None = None
    score_order: str = "max"
    records: list[CheckpointRecord] = field(default_factory=list)
    _count: int = 0

    def add(self, checkpoint: Checkpoint, metrics: dict[str, Any]) -> list[Checkpoint]:
        """Keep ``checkpoint``; return the checkpoints that fall off the shelf."""
        self._count += 1
        self.records.append(CheckpointRecord(checkpoint, metrics, self._count))
        if self.num_to_keep is None or len(self.records) <= self.num_to_keep:
            return []
        latest = self.records[-1]
        candidates = sorted(self.records[:-1], key=self._rank)
        dropped = candidates[: len(self.records) - self.num_to_keep]
        self.records = [r for r in self.records if r not in dropped or r is latest]
        return [r.checkpoint for r in dropped]

    def _rank(self, record: CheckpointRecord) -> tuple[float, int]:
        """Lower ranks go first."""
        if self.score_attribute is None:
            return (0.0, record.order)
        value = record.metrics.get(self.score_attribute)
        if not isinstance(value, int | float):
            return (float("-inf"), record.order)
        score = float(value) if self.score_order == "max" else -float(value)
        return (score, record.order)

    def best(self) -> list[tuple[Checkpoint, dict[str, Any]]]:
        return [(r.checkpoint, r.metrics) for r in self.records]
