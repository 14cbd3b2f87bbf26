"""The parts a Model is made of: parameters and their intervals, densities, nets, initial laws
and priors, assertions (immutable values, no derivations)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import sympy

Expr = sympy.Expr


@dataclass(frozen=True)
class Interval:
    """A real interval with open or closed ends; ``lo``/``hi`` may be ``-oo``/``oo``."""

    lo: Expr = sympy.S.NegativeInfinity
    hi: Expr = sympy.S.Infinity
    lo_closed: bool = False
    hi_closed: bool = False

    def contains(self, value) -> bool:
        v = sympy.sympify(value)
        above = v >= self.lo if self.lo_closed else v > self.lo
        below = v <= self.hi if self.hi_closed else v < self.hi
        return bool(above) and bool(below)

    @property
    def positive(self) -> bool:
        """True when every point of the interval is > 0."""
        return bool(self.lo > 0 or (self.lo == 0 and not self.lo_closed))

    @property
    def nonnegative(self) -> bool:
        return bool(self.lo >= 0)

    def __str__(self) -> str:
        def end(v):
            if v == sympy.S.Infinity:
                return "inf"
            if v == sympy.S.NegativeInfinity:
                return "-inf"
            return str(v)

        return f"{'[' if self.lo_closed else '('}{end(self.lo)}, {end(self.hi)}{']' if self.hi_closed else ')'}"


@dataclass(frozen=True)
class Param:
    """A named constant: ``param theta = 1.0 in (0, inf)`` or ``param d: int = 2``."""

    symbol: sympy.Symbol
    value: Optional[Expr] = None
    interval: Optional[Interval] = None
    integer: bool = False

    @property
    def name(self) -> str:
        return self.symbol.name


def log_of(p: Expr) -> Expr:
    """log p with log(exp(a)) and log(a*b) expanded (force: the states are real)."""
    return sympy.expand_log(sympy.log(p), force=True)


@dataclass(frozen=True)
class Density:
    """An unnormalised density p of the states (and possibly t): ``density p = exp(-U)``.

    ``expr`` is the right-hand side as written; ``is_log`` is True for ``log_density``.
    """

    name: str
    expr: Expr
    is_log: bool = False

    @property
    def log_expr(self) -> Expr:
        """log p, with log(exp(a)) and log(a*b) expanded."""
        if self.is_log:
            return self.expr
        return log_of(self.expr)

    @property
    def density_expr(self) -> Expr:
        """p itself (exp of the log-density for ``log_density``)."""
        return sympy.exp(self.expr) if self.is_log else self.expr


@dataclass(frozen=True)
class Net:
    """A learned function attached at compile time, called as ``net(x, t)`` -> shape of x."""

    name: str
    args: Tuple[str, ...] = ("x", "t")


@dataclass(frozen=True)
class Distribution:
    """An initial law or prior of one state: ``Normal(loc, scale)`` or ``data`` (samples given later)."""

    kind: str  # "normal" | "data"
    loc: Expr = sympy.S.Zero
    scale: Expr = sympy.S.One


@dataclass(frozen=True)
class Assertion:
    """A claim the spec makes about itself, checked by ``sdelang check``: ``assert stationary p``."""

    kind: str  # "stationary"
    target: str
