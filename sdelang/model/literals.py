"""Number literals of the language as SymPy numbers, within double precision."""
from __future__ import annotations

import sympy

from ..syntax import ast
from .scope import Scope

#: The largest finite double and the smallest positive (subnormal) one.
DOUBLE_MAX = sympy.Float("1.7976931348623157e308")
DOUBLE_TINY = sympy.Float("4.9406564584124654e-324")


def number(node: ast.Number, scope: Scope) -> sympy.Expr:
    """``1`` → Integer(1); ``1.5``, ``.5``, ``1e-3`` → Float of double precision (53 bits, so the
    text ``repr(float)`` prints reads back as that very float); underscores separate digits."""
    digits = node.text.replace("_", "")
    try:
        if node.is_integer:
            return sympy.Integer(int(digits))
        value = sympy.Float(digits, precision=53)  # double precision, like a Python float
    except ValueError:
        raise scope.source.error("this number is too long", node.span) from None
    if abs(value) > DOUBLE_MAX:
        raise scope.source.error("this number is too large for double precision", node.span)
    if not value.is_zero and abs(value) < DOUBLE_TINY:
        raise scope.source.error("this number is too small for double precision (it would be 0)", node.span)
    return value
