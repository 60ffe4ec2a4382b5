"""Optimizer rules rewriting a logical plan before it becomes physical operators.

Rules are registered through ``nebula_register_optimizer_rules`` (see ``_plugin.py`` and
``hookspecs.py``) as instances of :class:`Rule`; the optimizer applies every registered rule
in registration order, so a plugin can add its own. A rule sees one chain at a time
(``chain(plan)``): the optimizer runs the rules on a chain first, then on the inputs of the
operator with several inputs it starts with, so a rule may append operators to those inputs
(``JoinSortMapRule``) and the inputs' own rules (fusion) still see them.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from nebula.data._logical import AllToAll, FusedMap, Limit, LogicalOperator, MapOp, Read, chain
from nebula.data._registries import Rule, rule_registry

if TYPE_CHECKING:
    from nebula.data._transforms import BlockTransform


def rebuild(ops: list[LogicalOperator]) -> LogicalOperator:
    """Relink a source-first list of operators into a plan; returns its last operator.

    The first operator keeps its inputs when it has several (a union's branches).
    """
    previous: LogicalOperator | None = None
    for op in ops:
        if previous is not None:
            previous = op.with_inputs([previous])
        else:
            previous = op if op.input is None else op.with_inputs([])
    assert previous is not None
    return previous


class LimitPushdownRule(Rule):
    """Move a limit below operators that keep rows one to one, and merge adjacent limits.

    Limiting early means a ``map`` runs only on the rows ``take`` will return.
    """

    def apply(self, plan: LogicalOperator) -> LogicalOperator:
        ops = chain(plan)
        changed = True
        while changed:
            changed = False
            for index in range(1, len(ops)):
                op, below = ops[index], ops[index - 1]
                if not isinstance(op, Limit):
                    continue
                if isinstance(below, Limit):
                    merged = Limit(None, min(op.limit, below.limit))
                    ops[index - 1 : index + 1] = [merged]
                    changed = True
                    break
                if isinstance(below, MapOp) and below.one_to_one:
                    ops[index - 1], ops[index] = op, below
                    changed = True
                    break
        return rebuild(ops)


class PartialAggregationRule(Rule):
    """Aggregate each block where it is made, before a group-by's exchange.

    A built-in aggregation reduces a block to one row per group in the task that reads or
    maps it, so the exchange moves (and combines) partials instead of every row, and
    starts on them as the blocks come, with no second pass over the data.
    """

    def apply(self, plan: LogicalOperator) -> LogicalOperator:
        from nebula.data._aggregate import PartialAggregateTransform, partial_aggregation_applies

        ops = chain(plan)
        for index in range(len(ops) - 1, 0, -1):
            op, below = ops[index], ops[index - 1]
            if not (isinstance(op, AllToAll) and op.kind == "Aggregate"):
                continue
            if op.params.get("partial") or not isinstance(below, (Read, MapOp)):
                continue
            keys, aggs = list(op.params["keys"]), list(op.params["aggs"])
            if not partial_aggregation_applies(aggs, keys):
                continue
            remote_args = getattr(below, "remote_args", {}) if isinstance(below, MapOp) else {}
            partial = MapOp(
                None,
                kind="PartialAggregate",
                transform=PartialAggregateTransform(keys, aggs),
                remote_args=dict(remote_args),
            )
            params = {**op.params, "partial": True}
            ops[index : index + 1] = [partial, dataclasses.replace(op, params=params)]
        return rebuild(ops)


class ExchangeMapRule(Rule):
    """Run a random shuffle's or a sort's map side in the task that reads or maps each block.

    Each block comes out of that task already ordered (by a random key per row, or by the
    sort keys), so the exchange stores only the ordered blocks, never the input ones, and
    runs one task per output block instead of one per input block as well.
    """

    def apply(self, plan: LogicalOperator) -> LogicalOperator:
        from nebula.data._shuffle import KEY_SPACE, ShuffleMapTransform, SortMapTransform

        ops = chain(plan)
        for index in range(len(ops) - 1, 0, -1):
            op, below = ops[index], ops[index - 1]
            if not isinstance(op, AllToAll) or not isinstance(below, (Read, MapOp)):
                continue
            transform: BlockTransform
            if op.kind == "RandomShuffle" and not op.params.get("keyed"):
                if (op.params.get("num_blocks") or 0) > KEY_SPACE:
                    continue
                kind, flag = "ShuffleMap", "keyed"
                transform = ShuffleMapTransform(op.params.get("seed"))
            elif op.kind == "Sort" and not op.params.get("sorted_blocks"):
                kind, flag = "SortMap", "sorted_blocks"
                transform = SortMapTransform(list(op.params["keys"]), op.params["descending"])
            else:
                continue
            remote_args = getattr(below, "remote_args", {}) if isinstance(below, MapOp) else {}
            map_side = MapOp(None, kind=kind, transform=transform, remote_args=dict(remote_args))
            params = {**op.params, flag: True}
            ops[index : index + 1] = [map_side, dataclasses.replace(op, params=params)]
        return rebuild(ops)


class JoinSortMapRule(Rule):
    """Sort each block of a join's input by its key in the task that reads or maps it.

    A sorted block holds every key range contiguously: each join reduce finds its range in
    the block with a binary search, so the exchange stores only the sorted blocks, never the
    input ones and a partitioned copy of them. Each input (left, right) that ends in a read
    or a map gets the sort on its own join key; the join records which inputs come sorted.
    """

    def apply(self, plan: LogicalOperator) -> LogicalOperator:
        from nebula.data._join import Join
        from nebula.data._shuffle import SortMapTransform

        ops = chain(plan)
        join = ops[0]
        if not isinstance(join, Join) or join.spec is None or any(join.spec.sorted_inputs):
            return plan
        keys = (join.spec.on[0], join.spec.right_on[0])
        branches, sorted_inputs = list(join.inputs), [False, False]
        for side, (branch, key) in enumerate(zip(branches, keys)):
            if not isinstance(branch, (Read, MapOp)):
                continue
            remote_args = branch.remote_args if isinstance(branch, MapOp) else {}
            transform = SortMapTransform([key], False, what="join")
            branches[side] = MapOp(
                branch, kind="SortMap", transform=transform, remote_args=dict(remote_args)
            )
            sorted_inputs[side] = True
        if not any(sorted_inputs):
            return plan
        spec = dataclasses.replace(join.spec, sorted_inputs=(sorted_inputs[0], sorted_inputs[1]))
        ops[0] = dataclasses.replace(join, branches=tuple(branches), spec=spec)
        return rebuild(ops)


def _fusable(op: LogicalOperator) -> bool:
    return isinstance(op, MapOp) and op.actor_pool is None and op.max_tasks is None


def _same_resources(op: MapOp, last: LogicalOperator) -> bool:
    """Whether ``op`` can run inside the tasks of ``last`` (a read needs no resources)."""
    return dict(op.remote_args) == dict(getattr(last, "remote_args", {}))


class OperatorFusionRule(Rule):
    """Fuse runs of task-based map operators (and the read before them) into one operator.

    Each block then crosses the object store once per run instead of once per operator.
    Operators on actors, with their own concurrency cap, or asking for other resources
    (``num_cpus=``, ...) than the one before stay separate.
    """

    def apply(self, plan: LogicalOperator) -> LogicalOperator:
        fused: list[LogicalOperator] = []
        for op in chain(plan):
            last = fused[-1] if fused else None
            if not (isinstance(op, MapOp) and _fusable(op) and _same_resources(op, last)):
                fused.append(op)
            elif isinstance(last, FusedMap):
                fused[-1] = dataclasses.replace(last, stages=[*last.stages, op])
            elif isinstance(last, Read):
                fused[-1] = FusedMap(None, stages=[op], read=last)
            elif isinstance(last, MapOp) and _fusable(last):
                fused[-1] = FusedMap(None, stages=[last, op])
            else:
                fused.append(op)
        return rebuild(fused)


def optimize(plan: LogicalOperator) -> LogicalOperator:
    for rule in rule_registry().rules():
        plan = rule.apply(plan)
    ops = chain(plan)
    if len(ops[0].inputs) > 0:  # several inputs: each is a plan of its own
        ops[0] = ops[0].with_inputs([optimize(branch) for branch in ops[0].inputs])
        plan = rebuild(ops)
    return plan
