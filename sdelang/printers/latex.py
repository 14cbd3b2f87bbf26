r"""A Model in LaTeX: its equations aligned, its parameters listed (math mode, no ``$``).

    \begin{aligned}
    \mathrm{d}x &= \left(\theta \left(\mu - x\right)\right)\,\mathrm{d}t + \sigma\,\mathrm{d}W \\
    &\theta = 1.0 \in (0, \infty),\quad \mu = 0.0
    \end{aligned}

Stratonovich differentials are written ``\circ\,\mathrm{d}W``; networks print as
``\operatorname{score}\left(x, t\right)`` (with ``_{k}`` for output k where the model has several
states; :class:`sdelang.printers.equation.SdeLatexPrinter`).
"""
from __future__ import annotations

from typing import List

import sympy

from ..model.model import Model
from ..model.parts import Interval, Param
from .equation import latex
from .expression import tidy


def _latex(expr) -> str:
    return latex(expr)


def coefficient_latex(expr) -> str:
    """A coefficient before a differential, in parentheses when it is a sum or carries a sign."""
    text = _latex(expr)
    if isinstance(expr, sympy.Add) or expr.could_extract_minus_sign():
        return rf"\left({text}\right)"
    return text


def term_latex(coefficient, differential: str) -> str:
    r"""``(g)\,\mathrm{d}W``, or just ``\mathrm{d}W`` when the coefficient is 1."""
    if coefficient == 1:
        return differential
    return rf"{coefficient_latex(coefficient)}\,{differential}"


def _differential(symbol: sympy.Symbol) -> str:
    return rf"\mathrm{{d}}{_latex(symbol)}"


def equation_latex(model: Model, i: int) -> str:
    r"""``\mathrm{d}x &= (f)\,\mathrm{d}t + (g)\,\mathrm{d}W`` for state ``i`` (with ``&`` for aligned)."""
    terms: List[str] = []
    drift = tidy(model.drift_matrix[i, 0])
    if drift != 0:
        terms.append(term_latex(drift, _differential(model.time)))
    circle = r"\circ\," if model.calculus == "stratonovich" else ""
    for j, w in enumerate(model.brownians):
        g = tidy(model.diffusion_matrix[i, j])
        if g != 0:
            terms.append(term_latex(g, circle + _differential(w)))
    if not terms:
        terms.append(rf"0\,{_differential(model.time)}")
    return rf"{_differential(model.states[i])} &= " + " + ".join(terms)


def interval_latex(interval: Interval) -> str:
    left = "[" if interval.lo_closed else "("
    right = "]" if interval.hi_closed else ")"
    return rf"\in {left}{_latex(interval.lo)}, {_latex(interval.hi)}{right}"


def param_latex(param: Param) -> str:
    text = _latex(param.symbol)
    if param.value is not None:
        text += f" = {_latex(param.value)}"
    if param.interval is not None:
        text += " " + interval_latex(param.interval)
    if param.integer:
        text += r" \in \mathbb{Z}"
    return text


def to_latex(model: Model) -> str:
    r"""``\begin{aligned} ... \end{aligned}``: one row per equation, then the time interval and the
    parameters."""
    rows = [equation_latex(model, i) for i in range(model.n_states)]
    where = [rf"{_latex(model.time)} \in [{_latex(model.t0)}, {_latex(model.t1)}]"]
    if model.elementwise:
        where.append(rf"{_latex(model.states[0])} \in \mathbb{{R}}^{{{_latex(model.dimension)}}}")
    where += [param_latex(p) for p in model.parameters]
    rows.append("&" + r",\quad ".join(where))
    return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"
