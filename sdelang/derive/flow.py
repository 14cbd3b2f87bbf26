"""The probability-flow ODE (Song et al. 2021): the deterministic flow with the SDE's marginals.

    dx/dt = f - ½ ∇·D - ½ D ∇_x log p_t,   D = G Gᵀ,  (∇·D)_i = Σ_j ∂_j D_ij   (Itô f).

Same time and interval as the forward model; no Brownian motion (an n x 0 diffusion).
"""
from __future__ import annotations

from typing import Optional

import sympy

from .calculus import to_ito
from .operators import diffusion_tensor, matrix_divergence
from .score import resolve_score, used_nets


def probability_flow(model, score=None, *, name: Optional[str] = None):
    """The ODE model dx/dt = f - ½ ∇·D - ½ D score (score options as in ``reverse``)."""
    m = to_ito(model)
    score_t, nets = resolve_score(m, score, time_name=m.time.name)
    D = diffusion_tensor(m.diffusion)
    half = sympy.Rational(1, 2)
    velocity = m.drift - half * matrix_divergence(D, m.states) - half * D * score_t
    nets = used_nets(m, nets, velocity)
    return m.replace(
        marginal_score=None if score is None and m.marginal_score is None else tuple(score_t),
        name=name or f"{m.name}Flow",
        drift=velocity,
        diffusion=sympy.zeros(len(m.states), 0),
        brownians=(),
        calculus="ito",
        nets=nets,
        asserts=(),
        path=None,
    )
