"""SymPy expressions written in the `.sde` expression language.

The language has ``+ - * / ^``, numbers, ``pi``, the functions ``exp log sqrt sin cos tanh abs sign``,
network calls ``name(x, y, t)[i]`` and ``grad(e)[i]``. :class:`SdeExpressionPrinter` writes exactly
that subset and raises :class:`UnprintableExpression` for anything else (an ``Integral``, a
``Piecewise``, a symbol the model does not declare ...), so that printed text always parses back to
the same expression:

* powers use ``^`` with SymPy's precedence rules (``-x^2`` is -(x²), ``x^(y^z)``, ``(-2)^x``);
* rationals print as ``1/2`` (parenthesised by precedence), floats with ``repr`` precision so their
  binary value round-trips exactly;
* ``NetOutput`` prints as ``name(x, y, t)[i]`` (no index when the model has a single state).
"""
from __future__ import annotations

import decimal
from typing import Iterable, Optional

import sympy
from sympy.printing.precedence import precedence
from sympy.printing.str import StrPrinter

from ..model.functions import RealAbs, RealSign
from ..model.symbols import NetOutput


class UnprintableExpression(ValueError):
    """An expression that the `.sde` language cannot express."""


#: SymPy function classes the language writes under these names.
_FUNCTIONS = {
    sympy.exp: "exp",
    sympy.log: "log",
    sympy.sin: "sin",
    sympy.cos: "cos",
    sympy.tanh: "tanh",
    sympy.Abs: "abs",
    RealAbs: "abs",
    sympy.sign: "sign",
    RealSign: "sign",
}

_ATOMS = (sympy.Symbol, sympy.Rational, sympy.Float)
_CONSTANTS = (type(sympy.pi), type(sympy.E))
_OPERATIONS = (sympy.Add, sympy.Mul, sympy.Pow)
_NOTABLE_ASSUMPTIONS = ("real", "positive", "nonnegative", "negative", "integer")


def format_float(value: sympy.Float) -> str:
    """Decimal text that the parser (which reads decimals as doubles, ``Float(text, precision=53)``)
    turns back into exactly this number.

    A double prints by ``repr``, the shortest text that reads back as that double (``0.1``,
    ``1e-05``, ``0.30000000000000004``); a Float with more bits than a double by its exact, finite
    decimal expansion (which the parser then rounds to a double).
    """
    if not value.is_finite:
        raise UnprintableExpression(f"the number {value} is not finite")
    double = float(value)
    if value._prec != 53 and value - sympy.Float(double) != 0:  # more bits than a double holds
        text = _exact_decimal(value)
    else:
        text = repr(double)
    if "e" not in text and "." not in text:
        text += ".0"
    return text


def _exact_decimal(value: sympy.Float) -> str:
    """The finite decimal expansion of a binary float ``(-1)^sign · man · 2^exp``, every digit."""
    sign, man, exp, bc = value._mpf_
    with decimal.localcontext() as ctx:
        ctx.prec = int(0.31 * bc + 0.7 * abs(exp)) + 10
        exact = decimal.Decimal(man) * decimal.Decimal(2) ** exp
    return ("-" if sign else "") + str(exact).replace("E", "e")


class SdeExpressionPrinter(StrPrinter):
    """StrPrinter for the `.sde` language.

    ``states``: the model's state symbols in order (network calls must take exactly these);
    ``symbols``: every symbol the text may name (states, parameters, time); ``None`` allows any.
    ``strict=False`` prints what the language cannot express in SymPy's own notation instead of
    raising (for human-readable summaries, never for `.sde` text).
    """

    printmethod = "_sdestr"

    def __init__(
        self,
        *,
        states: Iterable[sympy.Symbol] = (),
        symbols: Optional[Iterable[sympy.Symbol]] = None,
        strict: bool = True,
    ):
        super().__init__()
        self.states = tuple(states)
        self.symbols = None if symbols is None else frozenset(symbols)
        self.strict = strict

    # ----------------------------------------------------------------- the gate
    def _print(self, expr, **kwargs) -> str:
        if self.strict and isinstance(expr, sympy.Basic):
            self._check_expressible(expr)
        return super()._print(expr, **kwargs)

    def _check_expressible(self, expr: sympy.Basic) -> None:
        if isinstance(expr, (NetOutput, sympy.Derivative)):
            return  # checked by their own printers
        if isinstance(expr, _ATOMS + _CONSTANTS + _OPERATIONS):
            return
        if isinstance(expr, sympy.Function) and expr.func in _FUNCTIONS:
            return
        raise UnprintableExpression(
            f"the .sde language cannot express {type(expr).__name__}: {sympy.sstr(expr)}"
        )

    def _fail(self, message: str, fallback) -> str:
        """Raise (strict) or print SymPy's own notation ``fallback()`` (lenient)."""
        if self.strict:
            raise UnprintableExpression(message)
        return fallback()

    # ----------------------------------------------------------------- atoms
    def _print_Symbol(self, expr) -> str:
        if self.strict and self.symbols is not None and expr not in self.symbols:
            assumptions = [k for k in _NOTABLE_ASSUMPTIONS if expr.assumptions0.get(k)]
            extra = f" (a symbol with assumptions {', '.join(assumptions)})" if assumptions else ""
            return self._fail(
                f"'{expr.name}'{extra} is not a state, parameter or the time of this model",
                lambda: expr.name,
            )
        return expr.name

    _print_Dummy = _print_Symbol

    def _print_Float(self, expr) -> str:
        if not expr.is_finite:
            return self._fail(
                f"the number {expr} is not finite",
                lambda: super(SdeExpressionPrinter, self)._print_Float(expr),
            )
        return format_float(expr)

    def _print_Exp1(self, expr) -> str:
        return "exp(1)"

    def _print_Pi(self, expr) -> str:
        return "pi"

    # ----------------------------------------------------------------- operations
    def _print_Pow(self, expr, rational=False) -> str:
        """``x^y``; ``sqrt(x)``, ``1/sqrt(x)`` and ``1/x`` for the exponents ½, -½ and -1."""
        prec = precedence(expr)
        base, exp = expr.base, expr.exp
        if exp is sympy.S.Half:
            return f"sqrt({self._print(base)})"
        if expr.is_commutative and -exp is sympy.S.Half:
            return f"1/sqrt({self._print(base)})"
        if expr.is_commutative and exp is sympy.S.NegativeOne:
            return "1/" + self.parenthesize(base, prec, strict=False)
        return self.parenthesize(base, prec, strict=False) + "^" + self.parenthesize(exp, prec, strict=False)

    def _print_Function(self, expr) -> str:
        name = _FUNCTIONS.get(expr.func)
        if name is None:
            return self._fail(
                f"the .sde language has no function '{expr.func.__name__}'",
                lambda: super(SdeExpressionPrinter, self)._print_Function(expr),
            )
        return f"{name}({self.stringify(expr.args, ', ')})"

    # ----------------------------------------------------------------- learned networks
    def _print_NetOutput(self, expr: NetOutput) -> str:
        """``name(x, y, t)[i]``; a single-state model's call has no index."""
        if self.states and tuple(expr.state_args) != self.states:
            return self._fail(
                f"network '{expr.net_name}' is called at {sympy.sstr(expr.state_args)}, but the "
                f".sde language calls networks at the model's states {sympy.sstr(self.states)}",
                lambda: expr._sympystr(self),
            )
        args = ", ".join([s.name for s in expr.state_args] + [self._print(expr.time_arg)])
        call = f"{expr.net_name}({args})"
        if len(expr.state_args) == 1:
            if expr.index != 0:
                return self._fail(
                    f"network '{expr.net_name}' of a one-state model has no output {expr.index}",
                    lambda: expr._sympystr(self),
                )
            return call
        return f"{call}[{expr.index}]"

    # ----------------------------------------------------------------- derivatives
    def _print_Derivative(self, expr: sympy.Derivative) -> str:
        """∂/∂x_i e as ``grad(e)[i]`` (``grad(e)`` for a one-state model), nested for higher orders."""
        for variable, _ in expr.variable_count:
            if variable not in self.states:
                return self._fail(
                    f"the .sde language cannot express a derivative with respect to '{sympy.sstr(variable)}' "
                    f"(only grad with respect to the states): {sympy.sstr(expr)}",
                    lambda: super(SdeExpressionPrinter, self)._print_Derivative(expr),
                )
        text = self._print(expr.expr)
        for variable, count in expr.variable_count:
            index = "" if len(self.states) == 1 else f"[{self.states.index(variable)}]"
            for _ in range(int(count)):
                text = f"grad({text}){index}"
        return text


def sde_expression(expr, **settings) -> str:
    """``expr`` as `.sde` text (see :class:`SdeExpressionPrinter` for the settings)."""
    return SdeExpressionPrinter(**settings).doprint(sympy.sympify(expr))


#: Coefficients with more operations than this are printed as they are (tidying is for display and
#: must stay cheap: a few milliseconds a coefficient); ``factor``, the dearest form, is tried only
#: below the smaller bound.
_TIDY_MAX_OPS, _FACTOR_MAX_OPS = 400, 30


def tidy(expr):
    """The shortest of a few equal forms of ``expr`` (as it is, expanded, with common factors
    pulled out, factored), by operation count: ``rho^2*v*xi^2/2 + v*xi^2*(1 - rho^2)/2`` prints as
    ``v*xi^2/2``. For display only (the printed text parses back to an equal expression); large
    expressions are left alone. Ties keep ``expr`` as written."""
    expr = sympy.sympify(expr)
    if not isinstance(expr, sympy.Expr) or expr.is_Atom:
        return expr
    ops = sympy.count_ops(expr)
    if ops > _TIDY_MAX_OPS:
        return expr
    candidates = []
    try:
        expanded = sympy.expand(expr)
        candidates += [expanded, sympy.factor_terms(expanded)]
        if ops <= _FACTOR_MAX_OPS and not expr.has(sympy.Float):
            candidates.append(sympy.factor(expr))
    except Exception:  # a form SymPy cannot build is simply not a candidate
        pass
    best, best_ops, best_length = expr, ops, None
    for candidate in candidates:
        candidate_ops = sympy.count_ops(candidate)
        if candidate_ops > best_ops:
            continue
        if candidate_ops == best_ops:  # a tie: the shorter text, else the form as written
            if best_length is None:
                best_length = len(sympy.sstr(best))
            length = len(sympy.sstr(candidate))
            if length >= best_length:
                continue
            best_length = length
        else:
            best_length = None
        best, best_ops = candidate, candidate_ops
    return best
