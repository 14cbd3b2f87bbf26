"""A Model written back as `.sde` text, such that ``sdelang.parse(to_sde(m)) == m``.

Everything is printed explicitly (time interval, every parameter, every Brownian motion in Model
order, every net, one equation per state), so the text does not rely on any default or implicit
declaration of the language. Expressions go through :class:`SdeExpressionPrinter`, which raises
:class:`UnprintableExpression` for anything the language cannot express.
"""
from __future__ import annotations

import re
from typing import List

import sympy

from ..model.model import Model
from ..model.parts import Distribution, Interval, Param
from .expression import SdeExpressionPrinter, tidy

_INDENT = "    "


def to_sde(model: Model) -> str:
    """The `.sde` source of ``model``: ``model NAME { ... }`` ending with a newline."""
    printer = _model_printer(model)
    time = f"time {model.time.name} in [{printer.doprint(model.t0)}, {printer.doprint(model.t1)}]"
    if model.reversal is not None:
        original, T = model.reversal
        time += f" reverses {original.name} = {printer.doprint(T - model.time)}"
    body: List[str] = [time]
    body += ["param " + param_text(p, printer) for p in model.parameters]
    body.append(_state_line(model, printer))
    if model.brownians:
        body.append("brownian " + ", ".join(b.name for b in model.brownians))
    body += [f"net {net.name}({', '.join(net.args)})" for net in model.nets]
    body += [
        f"{'log_density' if d.is_log else 'density'} {d.name} = {printer.doprint(d.expr)}"
        for d in model.densities
    ]
    if model.calculus == "stratonovich":
        body.append("calculus stratonovich")
    body += [_equation_line(model, i, printer) for i in range(model.n_states)]
    if model.marginal_score is not None:
        entries = [printer.doprint(e) for e in model.marginal_score]
        body.append("score = " + (entries[0] if len(entries) == 1 else f"[{', '.join(entries)}]"))
    body += [f"init {name} ~ {distribution_text(d, printer)}" for name, d in model.init]
    body += [f"prior {name} ~ {distribution_text(d, printer)}" for name, d in model.prior]
    body += [f"assert {a.kind} {a.target}" for a in model.asserts]
    lines = [f"model {model_identifier(model.name)} {{"] + [_INDENT + line for line in body] + ["}"]
    return "\n".join(lines) + "\n"


def model_identifier(name: str) -> str:
    """``name`` made a valid identifier (derived models may carry names like ``OU (reverse)``)."""
    ident = re.sub(r"\W+", "_", name or "").strip("_")
    if not ident:
        return "Model"
    return "_" + ident if ident[0].isdigit() else ident


def _model_printer(model: Model) -> SdeExpressionPrinter:
    symbols = set(model.states) | set(model.params) | {model.time}
    return SdeExpressionPrinter(states=model.states, symbols=symbols)


def param_text(param: Param, printer: SdeExpressionPrinter) -> str:
    """``theta = 1.0 in (0, inf)`` / ``d: int = 2`` / ``a`` (after the keyword ``param``)."""
    text = param.name
    if param.integer:
        text += ": int"
    if param.value is not None:
        text += f" = {printer.doprint(param.value)}"
    if param.interval is not None:
        text += f" in {interval_text(param.interval, printer)}"
    return text


def interval_text(interval: Interval, printer: SdeExpressionPrinter) -> str:
    def end(value) -> str:
        if value == sympy.S.Infinity:
            return "inf"
        if value == sympy.S.NegativeInfinity:
            return "-inf"
        return printer.doprint(value)

    left = "[" if interval.lo_closed else "("
    right = "]" if interval.hi_closed else ")"
    return f"{left}{end(interval.lo)}, {end(interval.hi)}{right}"


def _state_line(model: Model, printer: SdeExpressionPrinter) -> str:
    if model.elementwise:
        (x,) = model.states
        return f"state {x.name}[{printer.doprint(model.dimension)}]"
    return "state " + ", ".join(s.name for s in model.states)


def term_text(coefficient, differential: str, printer: SdeExpressionPrinter) -> str:
    """``(coefficient) dW``, or just ``dW`` when the coefficient is 1."""
    if coefficient == 1:
        return differential
    return f"{coefficient_text(coefficient, printer)} {differential}"


def coefficient_text(expr, printer: SdeExpressionPrinter) -> str:
    """A coefficient in front of ``dt``/``dW``: bare when it is a name, a non-negative number or a
    call, parenthesised otherwise."""
    text = printer.doprint(expr)
    bare = (
        isinstance(expr, (sympy.Symbol, sympy.Function, sympy.Derivative))
        or (isinstance(expr, (sympy.Integer, sympy.Float)) and expr >= 0)
    )
    return text if bare else f"({text})"


def _equation_line(model: Model, i: int, printer: SdeExpressionPrinter) -> str:
    """``dx = (f) dt + (g1) dW1 + ...`` with the nonzero terms; ``dx = 0 dt`` when all vanish."""
    state = model.states[i]
    terms = []
    drift = tidy(model.drift_matrix[i, 0])
    if drift != 0:
        terms.append(term_text(drift, f"d{model.time.name}", printer))
    for j, brownian in enumerate(model.brownians):
        g = tidy(model.diffusion_matrix[i, j])
        if g != 0:
            terms.append(term_text(g, f"d{brownian.name}", printer))
    if not terms:
        terms.append(f"0 d{model.time.name}")
    return f"d{state.name} = " + " + ".join(terms)


def distribution_text(dist: Distribution, printer: SdeExpressionPrinter) -> str:
    if dist.kind == "data":
        return "data"
    if dist.kind == "normal":
        return f"Normal({printer.doprint(dist.loc)}, {printer.doprint(dist.scale)})"
    raise ValueError(f"the .sde language has no distribution of kind {dist.kind!r}")
