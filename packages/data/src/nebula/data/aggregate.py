"""Aggregations for ``Dataset.aggregate`` and ``ds.groupby(key).aggregate``.

>>> from nebula.data.aggregate import Count, Mean, Std
>>> ds.groupby("k").aggregate(Count(), Mean("x"), Std("x", ddof=0)).take_all()

Built-ins name their output column ``count()``, ``sum(x)``, ``mean(x)``, ... unless given
``alias_name``; :class:`AggregateFn` builds any other aggregation from accumulator functions.
"""

from __future__ import annotations

from nebula.data._aggregations import AbsMax, AggregateFn, Count, Max, Mean, Min, Std, Sum

__all__ = ["AbsMax", "AggregateFn", "Count", "Max", "Mean", "Min", "Std", "Sum"]
