"""Printing lowered SymPy expressions as array code (torch, jax.numpy) — never via eval of user text.

``ArrayExprPrinter(namespace="torch", scalar_namespace="math")`` prints ``exp(x)`` as
``torch.exp(x)`` when x varies over the batch or in time, and as ``math.exp(theta)`` when its
argument depends on parameters and numbers only (Python floats stay Python floats, so dtype and
device always follow the state). Numbers print as Python literals (``repr(float)``).

The printer is strict: a symbol it was not given a name for, a function it has no array function
for, a complex or non-finite number, or a number outside double precision raises
:class:`~sdelang.errors.EmitError` instead of being written out.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import math

import sympy
from sympy.printing.codeprinter import PrintMethodNotImplementedError
from sympy.printing.pycode import PythonCodePrinter

from ..errors import EmitError

_UNARY = {
    "exp": "exp", "log": "log", "sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan",
    "tanh": "tanh", "sinh": "sinh", "cosh": "cosh", "atan": "atan", "asin": "asin", "acos": "acos",
    "expm1": "expm1", "log1p": "log1p", "sign": "sign", "RealSign": "sign",
}


def float_literal(value) -> str:
    """``repr(float(value))`` for a finite real number within double precision, else EmitError."""
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        raise EmitError(f"the number {value} cannot be written in double precision") from None
    if not math.isfinite(number):
        raise EmitError(f"the number {sympy.sstr(value)[:60]} is not finite in double precision "
                        "(too large, infinite or undefined)")
    return repr(number)


class ArrayExprPrinter(PythonCodePrinter):
    """Prints an expression with array functions from ``namespace``; scalar-only subexpressions
    (free of every symbol in ``array_symbols``) use ``scalar_namespace`` when it is given."""

    #: Defaults of a target's printer subclass (``namespace = "torch"``, ``scalar_namespace = "math"``).
    namespace: str = ""
    scalar_namespace: Optional[str] = None
    #: Print a sum with a positive term first (``y - c`` rather than ``-c + y``): an eager framework
    #: then runs one subtraction instead of a negation and an addition.
    positive_first: bool = False

    def __init__(self, namespace: Optional[str] = None, names: Optional[Dict[sympy.Symbol, str]] = None,
                 array_symbols: Iterable[sympy.Symbol] = (), scalar_namespace: Optional[str] = None):
        super().__init__({"fully_qualified_modules": False, "standard": "python3"})
        self.namespace = namespace or type(self).namespace
        if not self.namespace:
            raise TypeError("ArrayExprPrinter needs the namespace of its array functions")
        self.scalar_namespace = scalar_namespace or type(self).scalar_namespace
        self.names = dict(names or {})
        self.array_symbols = set(array_symbols)

    def declare(self, name: str, array: bool = False) -> None:
        """A variable of the generated code itself (a temporary, a network's output)."""
        self.names[sympy.Symbol(name)] = name
        if array:
            self.array_symbols.add(sympy.Symbol(name))

    # -- leaves
    def _print_Symbol(self, expr):
        if expr not in self.names:
            raise EmitError(f"the symbol {expr.name!r} is neither a state, a parameter nor the time "
                            "of the model; it cannot be generated")
        return self.names[expr]

    _print_Dummy = _print_Symbol

    def _print_Integer(self, expr):
        float_literal(expr)  # within double precision
        return str(int(expr))

    def _print_Rational(self, expr):
        return float_literal(expr)

    def _print_Float(self, expr):
        return float_literal(expr)

    def _print_NumberSymbol(self, expr):
        return float_literal(expr)

    _print_Pi = _print_NumberSymbol
    _print_Exp1 = _print_NumberSymbol

    def _print_ImaginaryUnit(self, expr):
        raise EmitError("complex numbers cannot be generated as real array code")

    def _print_Infinity(self, expr):
        raise EmitError("an infinite value cannot be generated as code")

    _print_NegativeInfinity = _print_Infinity
    _print_ComplexInfinity = _print_Infinity

    def _print_NaN(self, expr):
        raise EmitError("an undefined value (nan) cannot be generated as code")

    def emptyPrinter(self, expr):
        raise EmitError(f"no code can be generated for {type(expr).__name__}")

    # -- functions
    def _ns_for(self, arg) -> str:
        if self.scalar_namespace and not (sympy.sympify(arg).free_symbols & self.array_symbols):
            return self.scalar_namespace
        return self.namespace

    def assign(self, name: str, expr: sympy.Expr) -> str:
        """``name = <expr>``; ``name`` becomes an array symbol when ``expr`` depends on one."""
        code = f"{name} = {self.doprint(expr)}"
        self.declare(name, array=bool(sympy.sympify(expr).free_symbols & self.array_symbols))
        return code

    def _print(self, expr, **kwargs):
        if isinstance(expr, sympy.Expr) and expr.is_number and not expr.is_Integer:
            if expr.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
                raise EmitError(f"the constant {sympy.sstr(expr)[:60]} is not finite")
            try:
                value = complex(expr.evalf(17))
            except (TypeError, ValueError, OverflowError):
                raise EmitError(f"the constant {sympy.sstr(expr)[:60]} is not a real number") from None
            if value.imag != 0:
                raise EmitError(f"the constant {sympy.sstr(expr)[:60]} is not real")
            return float_literal(value.real)
        if isinstance(expr, sympy.Function) and type(expr).__name__ in _UNARY and len(expr.args) == 1:
            return self._print_Function(expr)
        try:
            return super()._print(expr, **kwargs)
        except PrintMethodNotImplementedError:
            raise EmitError(f"no code can be generated for {type(expr).__name__}") from None

    def _print_Function(self, expr):
        name = type(expr).__name__
        if name in _UNARY and len(expr.args) == 1:
            namespace = self._ns_for(expr.args[0])
            argument = self._print(expr.args[0])
            if _UNARY[name] == "sign" and namespace == "math":  # math has no sign()
                return f"(float({argument} > 0) - float({argument} < 0))"
            return f"{namespace}.{_UNARY[name]}({argument})"
        raise EmitError(f"no array function for {name}")

    def _print_Add(self, expr, order=None):
        if not self.positive_first:
            return super()._print_Add(expr, order=order)
        prec = sympy.printing.precedence.precedence(expr)
        terms = []
        for term in self._as_ordered_terms(expr, order=order):
            t = self._print(term)
            sign = "+"
            if t.startswith("-") and not term.is_Add:
                sign, t = "-", t[1:]
            if sympy.printing.precedence.precedence(term) < prec or term.is_Add:
                t = f"({t})"
            terms.append((sign, t))
        first = next((k for k, (sign, _) in enumerate(terms) if sign == "+"), 0)
        terms.insert(0, terms.pop(first))
        sign, t = terms[0]
        return ("-" if sign == "-" else "") + " ".join([t] + [f"{s} {u}" for s, u in terms[1:]])

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    _print_RealAbs = _print_Abs

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp == sympy.S.Half:
            return f"{self._ns_for(base)}.sqrt({self._print(base)})"
        if exp == -sympy.S.Half:
            return f"1.0/{self._ns_for(base)}.sqrt({self._print(base)})"
        if exp == -1:
            return f"1.0/{self.parenthesize(base, sympy.printing.precedence.PRECEDENCE['Pow'])}"
        b = self.parenthesize(base, sympy.printing.precedence.PRECEDENCE["Pow"])
        e = self.parenthesize(exp, sympy.printing.precedence.PRECEDENCE["Pow"])
        if exp.is_Integer:
            e = str(int(exp))
        return f"{b}**{e}"

    def _print_Piecewise(self, expr):
        raise EmitError("piecewise expressions are not supported by code generation")

    def _print_Derivative(self, expr):
        raise EmitError("cannot print an unevaluated derivative as array code")


def print_block(block, printer: ArrayExprPrinter, call_net, broadcast, indent: str = "        ",
                time_printer: Optional[ArrayExprPrinter] = None):
    """Lines of code computing a lowered :class:`~sdelang.emit.lower.Block`, and the code of
    each output.

    ``call_net(net_name, time_code) -> str`` prints one network evaluation on the whole state;
    ``broadcast(code) -> str`` wraps an output that is constant across the batch so that it takes
    the state's shape. Network outputs and everything computed from them are array symbols.
    ``time_printer`` prints the networks' time arguments when they need other names than the
    expressions (default: ``printer``).
    """
    lines = []
    for call in block.net_calls:
        time_code = (time_printer or printer).doprint(call.time)
        lines.append(f"{indent}{call.var} = {call_net(call.net, time_code)}")
        printer.declare(call.var, array=True)
        for var, index in call.components:
            lines.append(f"{indent}{var} = {call.var}[..., {index}]")
            printer.declare(var, array=True)
    for name, expr in block.temps:
        lines.append(indent + printer.assign(name, expr))
    outputs = []
    for expr, varies in zip(block.outputs, block.outputs_depend_on_state):
        code = printer.doprint(expr)
        outputs.append(code if varies else broadcast(code))
    return lines, outputs
