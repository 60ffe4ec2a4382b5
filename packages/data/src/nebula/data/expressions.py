"""Column expressions for ``Dataset.filter(expr=...)``.

>>> from nebula.data.expressions import col, lit
>>> ds.filter(expr=(col("z") > 0) & (col("name") != lit("x")))

Expressions evaluate with Arrow's compute kernels on whole blocks; ``filter`` also takes the
same condition as a string, ``"z > 0 and name != 'x'"``, or a ``pyarrow.compute.Expression``.
"""

from __future__ import annotations

from nebula.data._expressions import Expr, col, lit

__all__ = ["Expr", "col", "lit"]
