"""The backward operator (infinitesimal generator) of a model, in Itô form:

    L φ = Σ_i f_i ∂_i φ + ½ Σ_{i,j} D_ij ∂_i ∂_j φ,   D = G Gᵀ.

For an elementwise model φ is a function of one component x (the model's state symbol) and L acts
per component: L φ = f φ' + ½ g² φ''.
"""
from __future__ import annotations

from typing import Callable

import sympy

from .calculus import to_ito
from .operators import diffusion_tensor


class Generator:
    """φ ↦ L φ for one model (callable; ``repr`` shows the operator)."""

    def __init__(self, model):
        m = to_ito(model)
        self.states = m.states
        self.drift = m.drift
        self.diffusion_tensor = diffusion_tensor(m.diffusion)
        self.model_name = m.name

    def __call__(self, phi) -> sympy.Expr:
        phi = sympy.sympify(phi)
        xs, f, D = self.states, self.drift, self.diffusion_tensor
        n = len(xs)
        out = sum((f[i] * sympy.diff(phi, xs[i]) for i in range(n)), sympy.S.Zero)
        for i in range(n):
            for j in range(n):
                if D[i, j] != 0:
                    out += sympy.Rational(1, 2) * D[i, j] * sympy.diff(phi, xs[i], xs[j])
        return out

    def __repr__(self) -> str:
        return f"<generator of {self.model_name}: φ ↦ Σ f_i ∂_i φ + ½ Σ D_ij ∂_i ∂_j φ>"


def generator(model) -> Callable[[sympy.Expr], sympy.Expr]:
    """The callable φ ↦ L φ of the model."""
    return Generator(model)
