"""A readable multi-line summary of a Model (``str(model)``).

    model OU: Itô SDE, 1 state, 1 Brownian motion
      time       t in [0, 1]
      states     x
      params     theta = 1.0 in (0, inf), mu = 0.0, sigma = 0.5 in (0, inf)
      noise      additive (W)
      equations  dx = (theta*(mu - x)) dt + sigma dW

It never fails: what the `.sde` language cannot express is shown in SymPy's notation.
"""
from __future__ import annotations

from typing import List, Tuple

from ..model.model import Model
from .expression import SdeExpressionPrinter, tidy
from .sde import coefficient_text, distribution_text, param_text, term_text

_LABEL_WIDTH = 11


def model_kind(model: Model) -> str:
    """"ODE", "Itô SDE" or "Stratonovich SDE"."""
    if model.is_ode:
        return "ODE"
    return "Stratonovich SDE" if model.calculus == "stratonovich" else "Itô SDE"


def to_text(model: Model) -> str:
    printer = SdeExpressionPrinter(states=model.states, strict=False)
    rows: List[Tuple[str, List[str]]] = []
    rows.append(("time", [f"{model.time.name} in [{printer.doprint(model.t0)}, {printer.doprint(model.t1)}]"]))
    if model.elementwise:
        rows.append(("states", [f"{model.states[0].name}[{printer.doprint(model.dimension)}] (elementwise)"]))
    else:
        rows.append(("states", [", ".join(model.states.names)]))
    if model.parameters:
        rows.append(("params", [", ".join(param_text(p, printer) for p in model.parameters)]))
    if not model.is_ode:
        rows.append(("noise", [f"{model.noise_type} ({', '.join(model.brownians.names)})"]))
    rows.append(("equations", [_equation(model, i, printer) for i in range(model.n_states)]))
    if model.densities:
        rows.append(("densities", [
            f"{'log ' if d.is_log else ''}{d.name} = {printer.doprint(d.expr)}" for d in model.densities
        ]))
    if model.nets:
        rows.append(("nets", [", ".join(f"{n.name}({', '.join(n.args)})" for n in model.nets)]))
    for label, laws in (("init", model.init), ("prior", model.prior)):
        if laws:
            rows.append((label, [f"{name} ~ {distribution_text(d, printer)}" for name, d in laws]))
    if model.asserts:
        rows.append(("asserts", [f"{a.kind} {a.target}" for a in model.asserts]))

    n, m = model.n_states, model.n_brownians
    header = f"model {model.name}: {model_kind(model)}, {n} state{'s' if n != 1 else ''}"
    if not model.is_ode:
        header += f", {m} Brownian motion{'s' if m != 1 else ''}"
    lines = [header]
    for label, entries in rows:
        for k, entry in enumerate(entries):
            lines.append("  " + (label if k == 0 else "").ljust(_LABEL_WIDTH) + entry)
    return "\n".join(lines)


def _equation(model: Model, i: int, printer) -> str:
    terms = []
    if model.drift_matrix[i, 0] != 0 or model.is_ode:
        terms.append(term_text(tidy(model.drift_matrix[i, 0]), f"d{model.time.name}", printer))
    stratonovich = model.calculus == "stratonovich"
    for j, w in enumerate(model.brownians):
        g = tidy(model.diffusion_matrix[i, j])
        if g == 0:
            continue
        if stratonovich:  # G ∘ dW, with the coefficient always written
            terms.append(f"{coefficient_text(g, printer)} ∘ d{w.name}")
        else:
            terms.append(term_text(g, f"d{w.name}", printer))
    if not terms:
        terms.append(f"0 d{model.time.name}")
    return f"d{model.states[i].name} = " + " + ".join(terms)
