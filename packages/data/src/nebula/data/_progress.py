"""Progress bars for a running execution: one per operator, with rows, blocks and throughput.

Bars are drawn only on a terminal (``stream.isatty()``) and only while
``DataContext.enable_progress_bars`` is true, so logs and captured output stay clean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from nebula.data._budget import format_bytes

if TYPE_CHECKING:
    from nebula.data._physical import PhysicalOperator


def wants_progress_bars(enabled: bool, stream: TextIO | None) -> bool:
    """Whether to draw bars: asked for, and writing to a terminal."""
    if not enabled or stream is None:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ProgressBars:
    """A tqdm bar per operator, kept in step with the operators' stats by ``update``."""

    def __init__(self, operators: Sequence[PhysicalOperator], stream: TextIO) -> None:
        from tqdm import tqdm

        self._bars: list[tuple[PhysicalOperator, Any]] = [
            (
                op,
                tqdm(
                    desc=f"- {op.name}",
                    unit="row",
                    unit_scale=True,
                    file=stream,
                    position=position,
                    leave=True,
                    dynamic_ncols=True,
                    mininterval=0.2,
                ),
            )
            for position, op in enumerate(operators)
        ]
        self._blocks = [-1] * len(self._bars)

    def update(self) -> None:
        for index, (op, bar) in enumerate(self._bars):
            stats = op.stats
            if stats.blocks != self._blocks[index]:
                self._blocks[index] = stats.blocks
                bar.set_postfix_str(
                    f"{stats.blocks} blocks, {format_bytes(stats.output_bytes)}, "
                    f"{stats.tasks} tasks",
                    refresh=False,
                )
            bar.update(stats.rows - bar.n)

    def close(self) -> None:
        self.update()
        for _, bar in self._bars:
            bar.close()
        self._bars = []


def open_progress_bars(
    operators: Sequence[PhysicalOperator], enabled: bool, stream: TextIO | None
) -> ProgressBars | None:
    """Bars for ``operators`` on ``stream``, or None when they should not be drawn."""
    if not operators or not wants_progress_bars(enabled, stream):
        return None
    assert stream is not None
    return ProgressBars(operators, stream)
