"""Hooks that ``nebula.data`` offers to plugins: all-to-all operators and optimizer rules.

Added to the plugin manager by ``nebula.data``'s own plugin (through
``nebula_add_hookspecs``), so they exist exactly when nebula-data is installed. A plugin
implements them with :data:`nebula.plugins.hookimpl`::

    from nebula.data.hookspecs import Rule, RuleRegistry
    from nebula.plugins import hookimpl

    class DropNoOpLimits(Rule):
        def apply(self, plan):
            ...

    @hookimpl
    def nebula_register_optimizer_rules(registry: RuleRegistry) -> None:
        registry.add("DropNoOpLimits", DropNoOpLimits())

Importing this module does not import pyarrow.
"""

from __future__ import annotations

from nebula.data._registries import (
    AllToAllKind,
    Exchange,
    ExchangeStream,
    OperatorRegistry,
    Rule,
    RuleRegistry,
)

from nebula.plugins import hookspec

__all__ = [
    "AllToAllKind",
    "Exchange",
    "ExchangeStream",
    "OperatorRegistry",
    "Rule",
    "RuleRegistry",
    "nebula_register_operators",
    "nebula_register_optimizer_rules",
]


@hookspec
def nebula_register_operators(registry: OperatorRegistry) -> None:
    """Add all-to-all operator kinds (shuffles, sorts, aggregations) by name.

    :param registry: call ``registry.add(name, exchange, description=...)`` where
        ``exchange(bundles, params)`` takes every input block bundle and the operator's
        parameters and returns the output bundles. ``stream=`` (optional) is called with
        the parameters and may return an ``ExchangeStream``, which is handed each bundle as
        it arrives and returns the outputs once the last has come (``Sort`` and
        ``RandomShuffle`` split blocks larger than the store that way); None runs
        ``exchange`` instead.

    Called the first time a process plans a dataset's execution; nebula-data's own plugin
    adds ``Repartition``, ``RandomShuffle``, ``RandomizeBlockOrder``, ``Sort`` and
    ``Aggregate``. Not first-result: every implementation runs. Added in Nebula 0.1 (in
    core's hookspecs until 0.2).
    """


@hookspec
def nebula_register_optimizer_rules(registry: RuleRegistry) -> None:
    """Add rules that rewrite a dataset's logical plan before it runs.

    :param registry: call ``registry.add(name, rule, description=...)`` where ``rule`` is a
        :class:`Rule`. Rules run in registration order (nebula-data's own first:
        ``LimitPushdownRule``, then ``OperatorFusionRule``).

    Called the first time a process optimizes a plan. Not first-result: every
    implementation runs. Added in Nebula 0.2.
    """
