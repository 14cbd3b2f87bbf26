"""Noise class of an SDE, in the vocabulary of torchsde."""
from __future__ import annotations

from typing import Optional


def classify_noise(model) -> Optional[str]:
    """"additive": G does not depend on the state; "diagonal": n = m and G is diagonal;
    "scalar": one Brownian motion (m = 1); "general": anything else; None for an ODE.

    An elementwise vector model (``state x[d]``) has diagonal noise by construction, so it is
    "additive" when its per-component diffusion does not depend on x, else "diagonal".
    """
    if model.is_ode:
        return None
    G = model.diffusion_matrix
    states = set(model.states)
    if not any(entry.free_symbols & states for entry in G):
        return "additive"
    n, m = G.shape
    if model.elementwise:
        return "diagonal"
    if n == m and all(G[i, j] == 0 for i in range(n) for j in range(m) if i != j):
        return "diagonal"
    if m == 1:
        return "scalar"
    return "general"
