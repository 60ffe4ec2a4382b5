"""How a sort larger than the store learns how many blocks are still to come: each map
expects one output per input, counted back to the read tasks not yet run."""

from __future__ import annotations

from nebula.data._blocks import BlockMetadata, RefBundle
from nebula.data._physical import AllToAllOperator, InputBuffer, MapOperator
from nebula.data._transforms import ChainTransform


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[int | None] = []

    def add(self, bundle: object, to_come: int | None) -> None:
        self.seen.append(to_come)

    def finish(self) -> list[object]:
        return []


def test_inputs_to_come_count_queued_running_and_unread_inputs() -> None:
    source = InputBuffer("Input", ["task-0", "task-1", "task-2", "task-3"])
    read = MapOperator("Read", ChainTransform([]), max_in_flight=4)
    read.input_ops = [source]
    assert read.outputs_to_come() == 4
    read.add_input(source.take_output())
    assert read.outputs_to_come() == 4  # one queued, three unread
    stream = _Recorder()
    sort = AllToAllOperator("Sort", lambda bundles, params: [], {}, stream=stream)
    sort.input_ops = [read]
    sort.add_input(RefBundle("ref", BlockMetadata(1, 8, None)))  # type: ignore[arg-type]
    assert stream.seen == [4]


def test_inputs_to_come_unknown_past_an_operator_that_cannot_tell() -> None:
    read = MapOperator("Read", ChainTransform([]), max_in_flight=4)
    assert read.outputs_to_come() is None  # no input operators: nothing to count from
