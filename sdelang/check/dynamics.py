"""The model's Itô dynamics as numpy functions, for choosing the horizon and the step size.

dx = f(x) dt + G(x) dW with D = G Gᵀ: ``drift(x)`` (N, dim), ``covariance(x)`` D (N, dim, dim),
``jacobian(x)`` ∂f/∂x (N, dim, dim), from the Model's own SymPy expressions (parameters substituted,
a Stratonovich model converted to Itô first, time fixed at t0: a stationarity check is about an
autonomous model). The simulation itself is the backend's; these only inform the plan.

``decoupled`` is True when every coordinate moves on its own: f_i and D_ii depend on x_i only and
D is diagonal (always so for an elementwise model). Then each coordinate is a 1-D diffusion and
``coordinate(i)`` gives its (f_i, D_ii) as functions of a 1-D array.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Tuple

import numpy as np
import sympy

from ..derive.operators import diffusion_tensor
from .target import lambdify_rows


@dataclass
class Dynamics:
    dim: int
    elementwise: bool
    decoupled: bool
    _drift: Callable
    _cov: Callable
    _jac: Callable
    _coords: List[Tuple[Callable, Callable]]

    @classmethod
    def from_model(cls, model, dim: int) -> "Dynamics":
        model = model.to_ito()
        subs = dict(model.param_substitution())
        subs[model.time] = model.t0
        states = list(model.states)
        f = [sympy.sympify(e).xreplace(subs) for e in model.drift_matrix]
        G = sympy.Matrix(model.diffusion_matrix).xreplace(subs)
        D = diffusion_tensor(G)
        n = len(states)
        J = [sympy.diff(f[i], s) for i in range(n) for s in states]
        drift = lambdify_rows(states, f)
        cov = lambdify_rows(states, list(D))
        jac = lambdify_rows(states, J)
        if model.elementwise:
            one = (lambda x: drift(x[:, None])[:, 0], lambda x: cov(x[:, None])[:, 0])
            return cls(dim, True, True, drift, cov, jac, [one] * dim)
        decoupled = all(
            f[i].free_symbols & set(states) <= {states[i]}
            and D[i, i].free_symbols & set(states) <= {states[i]}
            and all(sympy.expand(D[i, j]) == 0 for j in range(n) if j != i)
            for i in range(n)
        )
        coords = []
        if decoupled:
            for i in range(n):
                fi = lambdify_rows([states[i]], [f[i]])
                di = lambdify_rows([states[i]], [D[i, i]])
                coords.append((lambda x, fi=fi: fi(x[:, None])[:, 0], lambda x, di=di: di(x[:, None])[:, 0]))
        return cls(dim, False, decoupled, drift, cov, jac, coords)

    def drift(self, x: np.ndarray) -> np.ndarray:
        if self.elementwise:
            return self._drift(x.reshape(-1, 1)).reshape(x.shape)
        return self._drift(x)

    def covariance(self, x: np.ndarray) -> np.ndarray:
        """D(x) = G Gᵀ, (N, dim, dim) (diagonal for an elementwise model)."""
        if self.elementwise:
            diag = self._cov(x.reshape(-1, 1)).reshape(x.shape)
            return np.einsum("ni,ij->nij", diag, np.eye(self.dim))
        return self._cov(x).reshape(len(x), self.dim, self.dim)

    def jacobian(self, x: np.ndarray) -> np.ndarray:
        """∂f_i/∂x_j, (N, dim, dim)."""
        if self.elementwise:
            diag = self._jac(x.reshape(-1, 1)).reshape(x.shape)
            return np.einsum("ni,ij->nij", diag, np.eye(self.dim))
        return self._jac(x).reshape(len(x), self.dim, self.dim)

    def coordinate(self, i: int) -> Tuple[Callable, Callable]:
        """(f_i, D_ii) of a decoupled coordinate, each a function of a 1-D array."""
        return self._coords[i]

    def fastest_rate(self, x: np.ndarray) -> float:
        """The 95th percentile over particles of the Jacobian's spectral radius max |eig ∂f/∂x|."""
        J = self.jacobian(x)
        J = J[np.all(np.isfinite(J), axis=(1, 2))]
        if len(J) == 0:
            return float("inf")
        radius = np.abs(np.linalg.eigvals(J)).max(axis=1)
        return float(np.percentile(radius, 95))


def stationary_density_1d(drift: Callable, diffusion: Callable, x: np.ndarray) -> np.ndarray:
    """The 1-D model's own stationary law on the grid x (zero probability flux):
    p_∞(x) ∝ exp(∫ 2f/D dx) / D(x)."""
    f, D = drift(x), diffusion(x)
    if np.any(D <= 0) or not np.all(np.isfinite(f)):
        raise ValueError("degenerate diffusion or drift on the grid")
    g = 2 * f / D
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * np.diff(x))])
    lp = integral - np.log(D)
    p = np.exp(lp - lp.max())
    return p / p.sum()


def confined_1d(drift: Callable, diffusion: Callable, lo: float, hi: float, pad: float = 0.1) -> bool:
    """True when the 1-D model's own stationary law, on [lo, hi] widened by ``pad``·width, puts
    at most 1e-3 of its mass outside [lo, hi] (a flipped drift piles it at the edges)."""
    width = hi - lo
    x = np.linspace(lo - pad * width, hi + pad * width, 2001)
    try:
        p = stationary_density_1d(drift, diffusion, x)
    except ValueError:
        return False
    return bool(np.all(np.isfinite(p)) and p[(x < lo) | (x > hi)].sum() <= 1e-3)
