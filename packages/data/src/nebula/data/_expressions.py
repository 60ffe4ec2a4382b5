"""Column expressions for ``Dataset.filter(expr=...)``, evaluated by Arrow on whole blocks.

Build one with :func:`col` and :func:`lit` (``col("z") > 0``,
``(col("a") < 5) & ~col("b").is_null()``) or give a string, which :func:`parse` turns into
the same (``"z > 0 and name != 'x'"``). An expression evaluates with Arrow's compute kernels
on the block's columns, so no row ever becomes a Python object. A
``pyarrow.compute.Expression`` is accepted too.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
from nebula.data._zero_copy import arrow_scalar

Value: TypeAlias = "pa.Array | pa.ChunkedArray | pa.Scalar"


class Expr:
    """A column expression; combine with ``+ - * /``, comparisons, ``&``, ``|`` and ``~``.

    Comparisons build expressions too (``col("a") == 1``), so an expression is not
    hashable and has no truth value: use ``&``/``|``/``~``, not ``and``/``or``/``not``.
    """

    __slots__ = ()

    def evaluate(self, block: pa.Table) -> Value:
        """The expression's values over ``block``'s rows (or one scalar for a constant)."""
        raise NotImplementedError

    # Arithmetic, as pyarrow's own expressions do it: overflow raises.
    def __add__(self, other: Any) -> Expr:
        return _Call("add_checked", "+", (self, _expr(other)))

    def __radd__(self, other: Any) -> Expr:
        return _Call("add_checked", "+", (_expr(other), self))

    def __sub__(self, other: Any) -> Expr:
        return _Call("subtract_checked", "-", (self, _expr(other)))

    def __rsub__(self, other: Any) -> Expr:
        return _Call("subtract_checked", "-", (_expr(other), self))

    def __mul__(self, other: Any) -> Expr:
        return _Call("multiply_checked", "*", (self, _expr(other)))

    def __rmul__(self, other: Any) -> Expr:
        return _Call("multiply_checked", "*", (_expr(other), self))

    def __truediv__(self, other: Any) -> Expr:
        return _Call("divide_checked", "/", (self, _expr(other)))

    def __rtruediv__(self, other: Any) -> Expr:
        return _Call("divide_checked", "/", (_expr(other), self))

    def __neg__(self) -> Expr:
        return _Call("negate_checked", "-", (self,))

    # Comparisons (null when either side is null, which a filter drops).
    def __eq__(self, other: Any) -> Expr:  # type: ignore[override]
        return _Call("equal", "==", (self, _expr(other)))

    def __ne__(self, other: Any) -> Expr:  # type: ignore[override]
        return _Call("not_equal", "!=", (self, _expr(other)))

    def __lt__(self, other: Any) -> Expr:
        return _Call("less", "<", (self, _expr(other)))

    def __le__(self, other: Any) -> Expr:
        return _Call("less_equal", "<=", (self, _expr(other)))

    def __gt__(self, other: Any) -> Expr:
        return _Call("greater", ">", (self, _expr(other)))

    def __ge__(self, other: Any) -> Expr:
        return _Call("greater_equal", ">=", (self, _expr(other)))

    # Boolean logic, SQL's three-valued kind: null & False is False, null & True is null.
    def __and__(self, other: Any) -> Expr:
        return _Call("and_kleene", "&", (self, _expr(other)))

    def __rand__(self, other: Any) -> Expr:
        return _Call("and_kleene", "&", (_expr(other), self))

    def __or__(self, other: Any) -> Expr:
        return _Call("or_kleene", "|", (self, _expr(other)))

    def __ror__(self, other: Any) -> Expr:
        return _Call("or_kleene", "|", (_expr(other), self))

    def __invert__(self) -> Expr:
        return _Call("invert", "~", (self,))

    def is_null(self) -> Expr:
        return _Call("is_null", "is_null", (self,))

    def is_not_null(self) -> Expr:
        return _Call("is_valid", "is_not_null", (self,))

    def is_in(self, values: Sequence[Any]) -> Expr:
        """True where the value is one of ``values`` (a null matches a None among them)."""
        return _IsIn(self, list(values))

    def not_in(self, values: Sequence[Any]) -> Expr:
        return ~self.is_in(values)

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        raise TypeError(
            "an expression has no truth value: combine conditions with &, | and ~ "
            "(not and, or, not), each in parentheses: (col('a') > 1) & (col('b') < 2)."
        )


class _Column(Expr):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def evaluate(self, block: pa.Table) -> Value:
        if self.name not in block.column_names:
            raise KeyError(
                f"the expression names the column {self.name!r}, which is not among the "
                f"dataset's columns {block.column_names}."
            )
        return block.column(self.name)

    def __repr__(self) -> str:
        return f"col({self.name!r})"


class _Literal(Expr):
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def evaluate(self, block: pa.Table) -> Value:
        return arrow_scalar(self.value)

    def __repr__(self) -> str:
        return repr(self.value)


class _Call(Expr):
    """An Arrow compute function over sub-expressions; ``symbol`` is how it prints."""

    __slots__ = ("args", "function", "symbol")

    def __init__(self, function: str, symbol: str, args: tuple[Expr, ...]) -> None:
        self.function = function
        self.symbol = symbol
        self.args = args

    def evaluate(self, block: pa.Table) -> Value:
        values = [arg.evaluate(block) for arg in self.args]
        return pc.call_function(self.function, values)

    def __repr__(self) -> str:
        if len(self.args) == 2:
            return f"({self.args[0]!r} {self.symbol} {self.args[1]!r})"
        if self.symbol in ("-", "~"):
            return f"{self.symbol}{self.args[0]!r}"
        return f"{self.args[0]!r}.{self.symbol}()"


class _IsIn(Expr):
    __slots__ = ("operand", "values")

    def __init__(self, operand: Expr, values: list[Any]) -> None:
        self.operand = operand
        self.values = values

    def evaluate(self, block: pa.Table) -> Value:
        return pc.is_in(self.operand.evaluate(block), value_set=pa.array(self.values))

    def __repr__(self) -> str:
        return f"{self.operand!r}.is_in({self.values!r})"


def col(name: str) -> Expr:
    """The column ``name`` in an expression: ``col("z") > 0``."""
    if not isinstance(name, str):
        raise TypeError(f"col() takes a column name (str), got {type(name).__name__}.")
    return _Column(name)


def lit(value: Any) -> Expr:
    """A constant in an expression: ``col("a") == lit("x")`` (plain values work too)."""
    return _Literal(value)


def _expr(value: Any) -> Expr:
    return value if isinstance(value, Expr) else _Literal(value)


# ---- strings ----------------------------------------------------------------------------

_COMPARE: dict[type[ast.cmpop], Callable[[Expr, Expr], Expr]] = {
    ast.Eq: Expr.__eq__,
    ast.NotEq: Expr.__ne__,
    ast.Lt: Expr.__lt__,
    ast.LtE: Expr.__le__,
    ast.Gt: Expr.__gt__,
    ast.GtE: Expr.__ge__,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[Expr, Expr], Expr]] = {
    ast.Add: Expr.__add__,
    ast.Sub: Expr.__sub__,
    ast.Mult: Expr.__mul__,
    ast.Div: Expr.__truediv__,
}


def parse(text: str) -> Expr:
    """The expression a string like ``"z > 0 and (name == 'a' or n in (1, 2))"`` stands for.

    Bare names are columns; numbers, strings, True/False and None are constants; it may
    compare (``== != < <= > >=``, ``in``, ``not in``), do arithmetic (``+ - * /``) and
    combine with ``and``, ``or`` and ``not``.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"filter(expr={text!r}) is not a valid expression: {exc.msg}.") from None
    return _build(tree.body, text)


def _build(node: ast.AST, text: str) -> Expr:
    if isinstance(node, ast.Name):
        return _Column(node.id)
    if isinstance(node, ast.Constant):
        return _Literal(node.value)
    if isinstance(node, ast.BoolOp):
        parts = [_build(value, text) for value in node.values]
        result = parts[0]
        for part in parts[1:]:
            result = result & part if isinstance(node.op, ast.And) else result | part
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ~_build(node.operand, text)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_build(node.operand, text)
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return _ARITHMETIC[type(node.op)](_build(node.left, text), _build(node.right, text))
    if isinstance(node, ast.Compare):
        return _compare(node, text)
    raise ValueError(
        f"filter(expr={text!r}): {ast.unparse(node)!r} is not supported; use column names, "
        "constants, comparisons, in, + - * /, and, or, not (or build the expression with "
        "nebula.data.expressions.col)."
    )


def _compare(node: ast.Compare, text: str) -> Expr:
    """``a < b <= c`` is ``(a < b) & (b <= c)``, as in Python."""
    tests = []
    left = _build(node.left, text)
    for op, right_node in zip(node.ops, node.comparators):
        if isinstance(op, (ast.In, ast.NotIn)):
            values = _constants(right_node, text)
            test = left.is_in(values) if isinstance(op, ast.In) else left.not_in(values)
            tests.append(test)
            continue
        if type(op) not in _COMPARE:
            raise ValueError(f"filter(expr={text!r}): {type(op).__name__} is not supported.")
        right = _build(right_node, text)
        tests.append(_COMPARE[type(op)](left, right))
        left = right
    result = tests[0]
    for test in tests[1:]:
        result = result & test
    return result


def _constants(node: ast.AST, text: str) -> list[Any]:
    items = node.elts if isinstance(node, (ast.Tuple, ast.List, ast.Set)) else None
    if items is None or not all(isinstance(item, ast.Constant) for item in items):
        raise ValueError(
            f"filter(expr={text!r}): 'in' needs a list of constants, got {ast.unparse(node)!r}."
        )
    return [item.value for item in items]  # type: ignore[attr-defined]


# ---- filtering ----------------------------------------------------------------------------


def as_expression(expr: Any, method: str = "filter(expr=...)") -> Expr | pc.Expression:
    """``expr`` ready to evaluate: a string is parsed, an expression is kept."""
    if isinstance(expr, str):
        return parse(expr)
    if isinstance(expr, (Expr, pc.Expression)):
        return expr
    raise TypeError(
        f'{method} takes a string such as "z > 0" or an expression such as '
        f"col('z') > 0, got {type(expr).__name__}."
    )


def evaluate_column(block: pa.Table, expr: Expr | pc.Expression) -> pa.Array | pa.ChunkedArray:
    """``expr``'s value for every row of ``block`` (a constant is repeated)."""
    try:
        if isinstance(expr, pc.Expression):
            import pyarrow.dataset as pads  # Arrow's own expressions need its scanner

            return pads.dataset(block).to_table(columns={"value": expr}).column("value")
        value = expr.evaluate(block)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise type(exc)(
            f"the expression {expr} failed on a block with columns {block.column_names}: {exc}"
        ) from exc
    if isinstance(value, pa.Scalar):
        return pa.repeat(value, block.num_rows)
    return value


def filter_block(block: pa.Table, expr: Expr | pc.Expression) -> pa.Table:
    """The rows of ``block`` where ``expr`` is true (null counts as false)."""
    try:
        if isinstance(expr, pc.Expression):
            return block.filter(expr)  # Arrow's own expressions run in its query engine
        mask = expr.evaluate(block)
        if isinstance(mask, pa.Scalar):
            keep = mask.is_valid and bool(mask.as_py())
            return block if keep else block.slice(0, 0)
        return block.filter(mask, null_selection_behavior="drop")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise type(exc)(
            f"filter(expr={expr}) failed on a block with columns {block.column_names}: {exc}"
        ) from exc
