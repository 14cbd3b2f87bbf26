"""Printing lowered SymPy expressions as array code (torch, jax.numpy) — never via eval of user text.

``ArrayExprPrinter(namespace="torch", scalar_namespace="math")`` prints ``exp(x)`` as
``torch.exp(x)`` when x varies over the batch or in time, and as ``math.exp(theta)`` when its
argument depends on parameters and numbers only (Python floats stay Python floats, so dtype and
device always follow the state). Numbers print as Python literals (``repr(float)``).
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import sympy
from sympy.printing.pycode import PythonCodePrinter

_UNARY = {
    "exp": "exp", "log": "log", "sqrt": "sqrt", "sin": "sin", "cos": "cos", "tan": "tan",
    "tanh": "tanh", "sinh": "sinh", "cosh": "cosh", "atan": "atan", "asin": "asin", "acos": "acos",
    "expm1": "expm1", "log1p": "log1p",
}


class ArrayExprPrinter(PythonCodePrinter):
    """Prints an expression with array functions from ``namespace``; scalar-only subexpressions
    (free of every symbol in ``array_symbols``) use ``scalar_namespace`` when it is given."""

    def __init__(self, namespace: str, names: Dict[sympy.Symbol, str],
                 array_symbols: Iterable[sympy.Symbol], scalar_namespace: Optional[str] = None):
        super().__init__({"fully_qualified_modules": False, "standard": "python3"})
        self.namespace = namespace
        self.scalar_namespace = scalar_namespace
        self.names = dict(names)
        self.array_symbols = set(array_symbols)

    # -- leaves
    def _print_Symbol(self, expr):
        return self.names.get(expr, expr.name)

    def _print_Integer(self, expr):
        return str(int(expr))

    def _print_Rational(self, expr):
        return repr(float(expr))

    def _print_Float(self, expr):
        return repr(float(expr))

    def _print_NumberSymbol(self, expr):
        return repr(float(expr))

    _print_Pi = _print_NumberSymbol
    _print_Exp1 = _print_NumberSymbol

    def _print_ImaginaryUnit(self, expr):
        raise ValueError("complex numbers cannot be generated as real array code")

    def _print_Infinity(self, expr):
        return "float('inf')"

    def _print_NegativeInfinity(self, expr):
        return "float('-inf')"

    def _print_NaN(self, expr):
        return "float('nan')"

    # -- functions
    def _ns_for(self, arg) -> str:
        if self.scalar_namespace and not (sympy.sympify(arg).free_symbols & self.array_symbols):
            return self.scalar_namespace
        return self.namespace

    def assign(self, name: str, expr: sympy.Expr) -> str:
        """``name = <expr>``; ``name`` becomes an array symbol when ``expr`` depends on one."""
        if sympy.sympify(expr).free_symbols & self.array_symbols:
            self.array_symbols.add(sympy.Symbol(name))
        return f"{name} = {self.doprint(expr)}"

    def _print(self, expr, **kwargs):
        if isinstance(expr, sympy.Expr) and expr.is_number and not expr.is_Integer:
            value = complex(expr.evalf(17))
            if value.imag != 0:
                raise ValueError(f"the constant {expr} is not real")
            return repr(value.real)
        if isinstance(expr, sympy.Function) and type(expr).__name__ in _UNARY and len(expr.args) == 1:
            return self._print_Function(expr)
        return super()._print(expr, **kwargs)

    def _print_Function(self, expr):
        name = type(expr).__name__
        if name in _UNARY and len(expr.args) == 1:
            return f"{self._ns_for(expr.args[0])}.{_UNARY[name]}({self._print(expr.args[0])})"
        raise ValueError(f"no array function for {name}")

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

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
        raise ValueError("piecewise expressions are not supported by code generation")

    def _print_Derivative(self, expr):
        raise ValueError("cannot print an unevaluated derivative as array code")


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
        printer.array_symbols.add(sympy.Symbol(call.var))
        for var, index in call.components:
            lines.append(f"{indent}{var} = {call.var}[..., {index}]")
            printer.array_symbols.add(sympy.Symbol(var))
    for name, expr in block.temps:
        lines.append(indent + printer.assign(name, expr))
    outputs = []
    for expr, varies in zip(block.outputs, block.outputs_depend_on_state):
        code = printer.doprint(expr)
        outputs.append(code if varies else broadcast(code))
    return lines, outputs
