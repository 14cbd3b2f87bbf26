"""Differential operators shared by the derivations (Itô form, D = G Gᵀ).

    D = G Gᵀ                         diffusion tensor, n x n
    (∇·D)_i = Σ_j ∂_j D_ij           divergence of a matrix field (row-wise)
    (∇φ)_i = ∂_i φ                   gradient of a scalar
    c_i = ½ Σ_{j,k} G_kj ∂_k G_ij    Stratonovich-to-Itô drift correction

For an elementwise model (``state x[d]``) the matrices are the 1 x 1 per-component ones and the
same formulas give the per-component quantities (∂_x g², ½ g ∂_x g, ...).
"""
from __future__ import annotations

from typing import Iterable, Sequence, Set

import sympy

from ..errors import DerivationError, did_you_mean


def diffusion_tensor(G: sympy.MatrixBase) -> sympy.Matrix:
    """D = G Gᵀ (n x n, symmetric)."""
    G = sympy.Matrix(G)
    if G.shape[1] == 0:
        return sympy.zeros(G.shape[0], G.shape[0])
    return G * G.T


def matrix_divergence(D: sympy.MatrixBase, states: Sequence[sympy.Symbol]) -> sympy.Matrix:
    """(∇·D)_i = Σ_j ∂_j D_ij, an n x 1 column."""
    n = len(states)
    return sympy.Matrix([sum((sympy.diff(D[i, j], states[j]) for j in range(n)), sympy.S.Zero)
                         for i in range(n)])


def gradient(expr: sympy.Expr, states: Sequence[sympy.Symbol]) -> sympy.Matrix:
    """∇φ = (∂_1 φ, ..., ∂_n φ)ᵀ."""
    return sympy.Matrix([sympy.diff(expr, x) for x in states])


def stratonovich_correction(G: sympy.MatrixBase, states: Sequence[sympy.Symbol]) -> sympy.Matrix:
    """c_i = ½ Σ_{j,k} G_kj ∂_k G_ij: Itô drift = Stratonovich drift + c."""
    G = sympy.Matrix(G)
    n, m = G.shape
    return sympy.Matrix([
        sympy.Rational(1, 2) * sum((G[k, j] * sympy.diff(G[i, j], states[k])
                                    for j in range(m) for k in range(n)), sympy.S.Zero)
        for i in range(n)
    ])


def taken_names(model) -> Set[str]:
    """Every name the model already uses (states, time, params, Brownians, nets, densities)."""
    names = {s.name for s in model.states} | {b.name for b in model.brownians}
    names |= {p.name for p in model.parameters} | {model.time.name}
    names |= {n.name for n in model.nets} | {d.name for d in model.densities}
    for e in list(model.drift_matrix) + list(model.diffusion_matrix):
        names |= {s.name for s in e.free_symbols if isinstance(s, sympy.Symbol)}
    return names


def fresh_name(base: str, taken: Iterable[str]) -> str:
    """``base``, or ``base_``, ``base__`` ... whichever is free."""
    taken = set(taken)
    name = base
    while name in taken:
        name += "_"
    return name


def resolve_density(model, name: str):
    """The model's declared density ``name``, or DerivationError naming the declared ones."""
    try:
        return model.density(name)
    except KeyError:
        known = [d.name for d in model.densities]
        raise DerivationError(
            f"model {model.name} declares no density '{name}'{did_you_mean(name, known)}"
            + (f"; declared: {', '.join(known)}" if known else "")
        ) from None


def component(model):
    """For an elementwise model: (index symbol i, Indexed base x, {x: x[i]}) to write Σ_i terms."""
    (x,) = model.states
    index = sympy.Symbol(fresh_name("i", taken_names(model)))
    base = sympy.IndexedBase(x.name)
    return index, base, {x: base[index]}


def elementwise_sum(model, per_component: sympy.Expr) -> sympy.Expr:
    """Σ_{i=1}^{d} of a per-component expression (written in the component symbol x).

    A term free of the state is summed exactly (d times it); otherwise the result is
    ``Sum(expr(x[i]), (i, 1, d))`` with d kept symbolic."""
    if per_component == 0:
        return sympy.S.Zero
    (x,) = model.states
    if not per_component.has(x):
        return model.dimension * per_component
    index, _, to_component = component(model)
    return sympy.Sum(per_component.xreplace(to_component), (index, 1, model.dimension))
