"""The perturbation kernel p(x_t | x_0) = N(mean, cov) of an affine SDE, read from ``Model.marginal()``.

Only affine models (drift A(t) x + b(t), diffusion independent of x, no networks) are asked; any
failure of the derivation simply means "no kernel" (the generated class then has none).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import sympy

from sdelang.model.symbols import NetOutput


def is_affine(model) -> bool:
    """f linear-affine in the states, G free of the states, no networks anywhere."""
    if model.is_ode or model.noise_type != "additive":
        return False
    exprs = list(model.drift_matrix) + list(model.diffusion_matrix)
    if any(e.has(NetOutput) for e in exprs):
        return False
    for f in model.drift_matrix:
        for a in model.states:
            for b in model.states:
                if sympy.diff(f, a, b) != 0:
                    return False
    return True


def _entries(value) -> List[sympy.Expr]:
    if isinstance(value, sympy.MatrixBase):
        return list(value)
    if isinstance(value, (list, tuple)):
        return [sympy.sympify(v) for v in value]
    return [sympy.sympify(value)]


def kernel_expressions(model) -> Optional[Tuple[List[sympy.Expr], List[sympy.Expr], Tuple[sympy.Symbol, ...], bool]]:
    """(mean entries, std entries (diagonal) or cov entries row-major (coupled), x0 symbols,
    diagonal?) in terms of t, the parameters and the x0 symbols; None when there is no kernel."""
    if not is_affine(model):
        return None
    try:
        marginal = model.marginal()
        mean = _entries(marginal.mean)
        cov_value = marginal.cov
        x0 = marginal.x0
    except Exception:  # the derivation is optional here: no kernel rather than no module
        return None
    x0 = tuple(x0) if isinstance(x0, (list, tuple, sympy.MatrixBase)) else (x0,)
    n = 1 if model.elementwise else model.n_states
    if len(mean) != n:
        return None
    if isinstance(cov_value, sympy.MatrixBase):
        cov = sympy.Matrix(cov_value)
    else:
        cov = sympy.Matrix([[sympy.sympify(cov_value)]])
    if cov.shape != (n, n):
        return None
    if any(e.has(sympy.Integral, sympy.Piecewise) for e in mean + list(cov)):
        return None  # not printable as array code
    if all(cov[i, j] == 0 for i in range(n) for j in range(n) if i != j):
        return mean, [sympy.sqrt(cov[i, i]) for i in range(n)], x0, True
    return mean, list(cov), x0, False
