r"""Partial differential equations of a model (the Kolmogorov forward equation ``m.kfp()``) in the
three formats of ``sdelang derive``.

``kfp()`` is ``Eq(Derivative(p(x, t), t), rhs)`` with p an undefined function; SymPy's own text of
it (``Derivative(p(x, t), (x, 2))``, ``**``, ``score(x, t)[0]``) is for programs. Here p(x, t) is
written ``p`` and its derivatives as follows:

* ``sde``: the `.sde` expression language: ``^`` powers, ``grad(p)`` (``grad(p)[k]`` for state k
  of a several-state model, nested for higher orders), networks as the spec calls them
  (``score(x, t)``, ``f(x, y, t)[1]``), an elementwise model's sum as ``sum(..., i = 1..d)``
  with ``x[i]`` and ``grad(p)[i]``;
* ``text``: readable: ``∂p/∂t = σ ...`` with ``∂²p/∂x²``, ``∂²p/∂S∂v``, ``x_i``, ``Σ_{i=1..d}``;
* ``latex``: ``\frac{\partial p}{\partial t} = ...`` with ``\frac{\partial^{2} p}{\partial x^{2}}``
  and networks as ``\operatorname{score}\left(x, t\right)``.

Networks of a one-state model have no index; an elementwise model's network ``f(x, t)`` is a
d-vector whose i-th component is ``f(x, t)[i]`` (LaTeX ``f(x, t)_{i}``).
"""
from __future__ import annotations

from typing import Optional

import sympy
from sympy.core.function import AppliedUndef
from sympy.printing.latex import LatexPrinter

from ..model.symbols import NetOutput
from .expression import SdeExpressionPrinter, tidy

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _is_density(expr, name: str) -> bool:
    return isinstance(expr, AppliedUndef) and expr.func.__name__ == name


def _component_derivative_parts(expr):
    """(density, component, order) of a ``ComponentDerivative`` (kfp's ∂^k p / ∂x_i^k)."""
    density, component, order = expr.args
    return density, component, int(order)


def _net_index(expr: NetOutput) -> Optional[sympy.Expr]:
    """The index to show on a network call: None for a one-state model's, the summation index
    (``i``) for an elementwise model's (called at ``x[i]``), else the output's number."""
    states = expr.state_args
    if len(states) == 1 and isinstance(states[0], sympy.Indexed):
        return states[0].indices[0]
    if len(states) == 1:
        return None
    return sympy.Integer(expr.index)


def _net_arguments(expr: NetOutput, show) -> str:
    names = [s.base.label.name if isinstance(s, sympy.Indexed) else show(s) for s in expr.state_args]
    return ", ".join(names + [show(expr.time_arg)])


class _PdeStrPrinter(SdeExpressionPrinter):
    """The `.sde` (``style="sde"``) or readable (``style="text"``) form of a PDE's right-hand side."""

    printmethod = "_sdelang_pde_str"

    def __init__(self, states, density: str = "p", style: str = "sde", shown: str = None):
        super().__init__(states=states, strict=False)
        self.density = density
        self.shown = shown or density
        self.style = style

    def _print_Function(self, expr) -> str:
        if _is_density(expr, self.density):
            return self.shown
        return super()._print_Function(expr)

    def _print_Indexed(self, expr) -> str:
        base, index = expr.base.label.name, ", ".join(self._print(i) for i in expr.indices)
        return f"{base}[{index}]" if self.style == "sde" else f"{base}_{index}"

    def _print_NetOutput(self, expr: NetOutput) -> str:
        call = f"{expr.net_name}({_net_arguments(expr, self._print)})"
        index = _net_index(expr)
        return call if index is None else f"{call}[{self._print(index)}]"

    def _partial(self, variables) -> str:
        """``∂²p/∂x²``, ``∂²p/∂S∂v`` (text style) for [(variable, count), ...]."""
        total = sum(count for _, count in variables)
        top = "∂" + (str(total).translate(_SUPERSCRIPTS) if total > 1 else "") + self.shown
        bottom = "".join("∂" + self._print(v) + (str(c).translate(_SUPERSCRIPTS) if c > 1 else "")
                         for v, c in variables)
        return f"{top}/{bottom}"

    def _grad(self, text: str, variables) -> str:
        """``grad(grad(p)[0])[1]`` (sde style); the index is the state's number, or ``i``."""
        for variable, count in variables:
            if isinstance(variable, sympy.Indexed):
                index = f"[{self._print(variable.indices[0])}]"
            elif len(self.states) == 1:
                index = ""
            else:
                index = f"[{self.states.index(variable)}]"
            for _ in range(int(count)):
                text = f"grad({text}){index}"
        return text

    def _print_Derivative(self, expr) -> str:
        variables = [(v, int(c)) for v, c in expr.variable_count]
        if _is_density(expr.expr, self.density):
            if self.style == "text":
                return self._partial(variables)
            if all(v in self.states or isinstance(v, sympy.Indexed) for v, _ in variables):
                return self._grad(self.shown, variables)
        if self.style == "text":
            inner = self.parenthesize(expr.expr, 1000, strict=False)
            order = sum(c for _, c in variables)
            top = "∂" + (str(order).translate(_SUPERSCRIPTS) if order > 1 else "")
            bottom = "".join("∂" + self._print(v) + (str(c).translate(_SUPERSCRIPTS) if c > 1 else "")
                             for v, c in variables)
            return f"{top}/{bottom} {inner}"
        if all(v in self.states or isinstance(v, sympy.Indexed) for v, _ in variables):
            return self._grad(self._print(expr.expr), variables)
        return super()._print_Derivative(expr)

    def _print_ComponentDerivative(self, expr) -> str:
        density, component, order = _component_derivative_parts(expr)
        if self.style == "text":
            return self._partial([(component, order)])
        return self._grad(self._print(density), [(component, order)])

    def _print_Sum(self, expr) -> str:
        (index, lo, hi), = expr.limits
        body = self._print(expr.function)
        if self.style == "text":
            return f"Σ_{{{self._print(index)}={self._print(lo)}..{self._print(hi)}}} [{body}]"
        return f"sum({body}, {self._print(index)} = {self._print(lo)}..{self._print(hi)})"


class SdeLatexPrinter(LatexPrinter):
    r"""SymPy's LaTeX with the model's notation: a density function p(x, t) as ``p``, its
    derivatives as ``\frac{\partial^{2} p}{\partial x^{2}}``, networks as
    ``\operatorname{score}\left(x, t\right)`` (``_{k}`` only where the model has several states;
    ``_{i}`` for an elementwise model's component)."""

    def __init__(self, density: str = "p", shown: str = None, **settings):
        super().__init__(settings)
        self.density = density
        self.shown = shown or density

    def _print(self, expr, **kwargs):
        # NetOutput and ComponentDerivative carry their own ``_latex``, which SymPy would call
        # before any ``_print_<class>``; the other classes keep theirs (∞ is ``\infty``).
        if isinstance(expr, NetOutput):
            return self._print_NetOutput(expr, **kwargs)
        if type(expr).__name__ == "ComponentDerivative":
            return self._print_ComponentDerivative(expr, **kwargs)
        return super()._print(expr, **kwargs)

    def _print_Function(self, expr, exp=None):
        if _is_density(expr, self.density):
            text = self.shown
            return text if exp is None else f"{text}^{{{exp}}}"
        return super()._print_Function(expr, exp)

    def _print_NetOutput(self, expr: NetOutput, exp=None) -> str:
        name = rf"\operatorname{{{expr.net_name}}}" if len(expr.net_name) > 1 else expr.net_name
        call = rf"{name}\left({_net_arguments(expr, self._print)}\right)"
        index = _net_index(expr)
        if index is not None:
            call += f"_{{{self._print(index)}}}"
        return call if exp is None else rf"\left({call}\right)^{{{exp}}}"

    def _partial(self, variables) -> str:
        total = sum(count for _, count in variables)
        power = "" if total == 1 else f"^{{{total}}}"
        bottom = " ".join(rf"\partial {self._print(v)}" + ("" if c == 1 else f"^{{{c}}}") for v, c in variables)
        return rf"\frac{{\partial{power} {self.shown}}}{{{bottom}}}"

    def _print_Derivative(self, expr):
        if _is_density(expr.expr, self.density):
            return self._partial([(v, int(c)) for v, c in expr.variable_count])
        return super()._print_Derivative(expr)

    def _print_ComponentDerivative(self, expr, exp=None):
        _, component, order = _component_derivative_parts(expr)
        return self._partial([(component, order)])


def latex(expr, density: str = "p", shown: str = None) -> str:
    """``expr`` in LaTeX with the model's notation (see :class:`SdeLatexPrinter`)."""
    return SdeLatexPrinter(density=density, shown=shown).doprint(expr)


def shown_density_name(equation, density: str = "p") -> str:
    """``density``, else ``P``, else ``p1``, ``p2``, ... : the first name that no symbol of the
    equation has (a state or parameter called p), so that the printed p is never ambiguous."""
    names = {s.name for s in equation.free_symbols}
    names |= {a.base.label.name for a in equation.atoms(sympy.Indexed)}
    candidates = [density, density.upper()] + [f"{density}{k}" for k in range(1, len(names) + 2)]
    return next(name for name in candidates if name not in names)


def _is_density_term(expr, density: str) -> bool:
    if _is_density(expr, density):
        return True
    if isinstance(expr, sympy.Derivative) and _is_density(expr.expr, density):
        return True
    return type(expr).__name__ == "ComponentDerivative"


def tidy_rhs(rhs: sympy.Expr, density: str = "p") -> sympy.Expr:
    """The right-hand side as Σ (tidied coefficient) · (p or a derivative of p), each coefficient
    the shortest of a few equal forms (:func:`sdelang.printers.expression.tidy`); an elementwise
    model's ``Sum`` is tidied inside. Anything else is returned as it is."""
    if isinstance(rhs, sympy.Sum):
        return sympy.Sum(tidy_rhs(rhs.function, density), *rhs.limits)
    groups = {}
    for term in sympy.Add.make_args(rhs):
        factors = [f for f in sympy.Mul.make_args(term) if _is_density_term(f, density)]
        if len(factors) != 1:
            return rhs
        key = factors[0]
        groups[key] = groups.get(key, sympy.S.Zero) + term / key
    return sympy.Add(*[tidy(coefficient) * key for key, coefficient in groups.items()])


def equation_text(model, equation: sympy.Eq, fmt: str = "sde", density: str = "p") -> str:
    """``∂p/∂t = rhs`` of ``equation`` (``m.kfp()``) in ``fmt`` ("sde", "text" or "latex"), one line
    without the newline; the coefficients of p and its derivatives are tidied (:func:`tidy_rhs`)."""
    equation = sympy.Eq(equation.lhs, tidy_rhs(equation.rhs, density), evaluate=False)
    shown = shown_density_name(equation, density)
    if fmt == "latex":
        return f"{latex(equation.lhs, density, shown)} = {latex(equation.rhs, density, shown)}"
    if fmt not in ("sde", "text"):
        raise ValueError(f"unknown format {fmt!r}; expected sde, text or latex")
    printer = _PdeStrPrinter(model.states, density=density, style=fmt, shown=shown)
    # the .sde language has no ∂/∂t: the left side is written as the text form writes it
    lhs = _PdeStrPrinter(model.states, density=density, style="text", shown=shown).doprint(equation.lhs)
    return f"{lhs} = {printer.doprint(equation.rhs)}"
