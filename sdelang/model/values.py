"""The values expressions lower to: a scalar SymPy expression, a :class:`Vector`, or (inside an
equation) a form linear in the differentials."""
from __future__ import annotations

from typing import Union

import sympy

from .differentials import LinearForm


class Vector(tuple):
    """A vector value of the language (a tuple of SymPy expressions)."""


#: A value: a scalar, a vector, or (inside an equation) a form linear in the differentials.
Value = Union[sympy.Expr, Vector, LinearForm]
