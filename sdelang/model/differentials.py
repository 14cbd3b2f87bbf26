"""The differentials of an equation's right side: ``dt`` and the Brownian increments ``dW…``.

While an equation ``dx = E`` is lowered, every value that contains a differential is a
:class:`LinearForm` Σ_s c_s·s + r, s ranging over ``dt`` and the ``dW_k``. Sums and products with
ordinary expressions keep that form; anything else (``dt^2``, ``dt*dW``, ``x/dt``, ``exp(dW)``) is
an error at that very node. E must end as a form with r = 0; then c_dt is the drift and c_dW_k
the k-th diffusion column. This keeps the coefficients as written (``theta*(mu - x)``) and needs
no symbolic differentiation.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import sympy

from ..syntax import ast
from .scope import Scope


class LinearForm:
    """Σ_s c_s·s + rest: ``terms`` maps a differential's name (``dt``, ``dW1``) to c_s."""

    __slots__ = ("terms", "rest")

    def __init__(self, terms: Dict[str, sympy.Expr], rest: sympy.Expr = sympy.S.Zero):
        self.terms = terms
        self.rest = rest

    def scaled(self, factor: sympy.Expr) -> "LinearForm":
        return LinearForm({k: c * factor for k, c in self.terms.items()}, self.rest * factor)

    def plus(self, other, sign: int = 1) -> "LinearForm":
        """self + sign·other, other a LinearForm or an ordinary expression."""
        terms = dict(self.terms)
        if isinstance(other, LinearForm):
            for k, c in other.terms.items():
                terms[k] = terms.get(k, sympy.S.Zero) + sign * c
            return LinearForm(terms, self.rest + sign * other.rest)
        return LinearForm(terms, self.rest + sign * other)

    @property
    def labels(self) -> str:
        return " and ".join(self.terms)


@dataclass
class Differentials:
    """The Brownian motions of a model in order (declared ones first, then implicit ``dW…`` ones
    in order of first use) and the differentials an equation may contain."""

    scope: Scope
    brownians: Dict[str, sympy.Symbol] = field(default_factory=dict)

    def add(self, name: str) -> None:
        self.brownians[name] = sympy.Symbol(name)

    @property
    def time_label(self) -> str:
        return "d" + self.scope.time.name

    def lookup(self, ident: ast.Ident):
        """The form 1·``ident`` when ``ident`` is a differential (``dt``, ``dB``, ``dW2``...),
        declaring an implicit Brownian motion on first use; None otherwise."""
        name = ident.name
        process = name[1:]
        if name == self.time_label or (name.startswith("d") and process in self.brownians):
            return LinearForm({name: sympy.S.One})
        if not name.startswith("dW"):
            return None
        self.scope.declare(ast.Ident(process, ident.span), "brownian", sympy.Symbol(process))
        if self.scope.elementwise and self.brownians:
            first = next(iter(self.brownians))
            raise self.scope.source.error(
                f"an elementwise model (state x[d]) has one d-dimensional Brownian motion; "
                f"write d{first} for all its noise, not '{name}'",
                ident.span,
            )
        self.add(process)
        return LinearForm({name: sympy.S.One})


def additive_terms(node: ast.Expr, sign: int = 1) -> List[Tuple[int, ast.Expr]]:
    """The top-level terms of ``a + b - c`` with their signs (to point at an offending term),
    in order, without recursion."""
    terms = []
    stack = [(sign, node)]
    while stack:
        sign, node = stack.pop()
        if isinstance(node, ast.BinaryOp) and node.op in "+-":
            stack.append((sign if node.op == "+" else -sign, node.right))
            stack.append((sign, node.left))
        elif isinstance(node, ast.UnaryOp):
            stack.append((sign if node.op == "+" else -sign, node.operand))
        else:
            terms.append((sign, node))
    return terms
