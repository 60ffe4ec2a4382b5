"""The registries behind ``nebula.data.hookspecs``, typed so plugins get errors at ``add``.

Kept free of pyarrow: every Nebula process loads nebula-data's plugin, and most never build
a dataset.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from nebula.plugins import Registry

if TYPE_CHECKING:
    from nebula.data._blocks import RefBundle
    from nebula.data._logical import LogicalOperator

__all__ = [
    "AllToAllKind",
    "Exchange",
    "ExchangeStream",
    "OperatorRegistry",
    "Rule",
    "RuleRegistry",
    "operator_registry",
    "rule_registry",
]

Exchange = Callable[["list[RefBundle]", "dict[str, Any]"], "list[RefBundle]"]
"""Runs an all-to-all operator: every input bundle and the operator's parameters in, the
output bundles out."""


class ExchangeStream(Protocol):
    """An exchange that starts work on its input bundles as they arrive.

    ``add`` takes each bundle (and how many more the operators upstream expect to send, or
    None when unknown); ``finish`` runs once the last has come and returns the outputs, as
    an ``Exchange`` would. The stream holds the bundles it needs: the operator keeps none.
    """

    def add(self, bundle: RefBundle, to_come: int | None) -> None: ...

    def finish(self) -> list[Any]: ...


StreamFactory = Callable[["dict[str, Any]"], "ExchangeStream | None"]
"""An operator's parameters in, a stream for its inputs out (None: run the exchange on
every input at once)."""


class Rule(ABC):
    """Rewrites a logical plan (given by its last operator) into an equivalent one.

    The optimizer hands a rule one chain at a time, running the rules on the inputs of an
    operator with several inputs (a union, a zip, a join) first; a rule keeps that operator
    first in the chain it rebuilds.
    """

    @abstractmethod
    def apply(self, plan: LogicalOperator) -> LogicalOperator: ...


class RuleRegistry(Registry[Rule]):
    """Optimizer rules, applied in the order they were added."""

    kind = "optimizer rule"

    def add(self, name: str, rule: Rule, *, description: str = "") -> None:
        if not isinstance(rule, Rule):
            raise TypeError(
                f"optimizer rule {name!r} must be an instance of a nebula.data.hookspecs.Rule "
                f"subclass, got {type(rule).__name__}."
            )
        super().add(name, rule, description=description)

    def rules(self) -> list[Rule]:
        return [self.get(name) for name in self.names()]


@dataclass(frozen=True)
class AllToAllKind:
    """A registered all-to-all operator kind: how its exchange runs."""

    exchange: Exchange
    stream: StreamFactory | None = None


class OperatorRegistry(Registry[AllToAllKind]):
    """All-to-all operator kinds by name; a logical all-to-all operator names its kind."""

    kind = "operator"

    def add(  # type: ignore[override]
        self,
        name: str,
        exchange: Exchange,
        *,
        description: str = "",
        stream: StreamFactory | None = None,
    ) -> None:
        if not callable(exchange):
            raise TypeError(
                f"operator {name!r} needs a callable exchange(bundles, params), "
                f"got {type(exchange).__name__}."
            )
        super().add(name, AllToAllKind(exchange, stream), description=description)


def operator_registry() -> OperatorRegistry:
    """Every installed plugin's all-to-all operators, collected on first use."""
    from nebula.plugins import get_registry

    return get_registry("nebula_register_operators", OperatorRegistry)


def rule_registry() -> RuleRegistry:
    """Every installed plugin's optimizer rules, collected on first use."""
    from nebula.plugins import get_registry

    return get_registry("nebula_register_optimizer_rules", RuleRegistry)
