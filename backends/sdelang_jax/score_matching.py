"""Denoising score matching with the closed-form perturbation kernel of an affine SDE.

t ~ U(t0 + t_min, t1), ε ~ N(0, I), x_t = m_t(x0) + σ_t ε (diagonal kernel) and the target score
-ε/σ_t:
    weighting="sigma2":      λ = σ_t²   →  E ||σ_t s(x_t, t) + ε||²
    weighting="likelihood":  λ = D = G Gᵀ →  E (s + ε/σ_t)ᵀ D (s + ε/σ_t)   (Song et al. 2021)
For a coupled kernel N(m_t, Σ_t) (e.g. critically damped Langevin) x_t = m_t + L ε with Σ_t = L Lᵀ,
target -L⁻ᵀ ε, and the losses ||Lᵀ s + ε||² and (s + L⁻ᵀ ε)ᵀ D (s + L⁻ᵀ ε). Mean over the batch.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from .runtime import as_key, require_net


def _quadratic_diffusion(module, t, x, r):
    """rᵀ D r with D = G Gᵀ from the module's diffusion at (t, x)."""
    G = module.diffusion_matrix(t, x)
    if module.elementwise:
        return jnp.sum((G * r) ** 2, axis=-1)
    Gr = jnp.einsum("...nm,...n->...m", G, r)
    return jnp.sum(Gr**2, axis=-1)


def dsm_loss(module, x0, *, t_min=1e-3, weighting="sigma2", key=None, seed=0):
    """The denoising score-matching loss of the attached ``score`` network (a scalar)."""
    if weighting not in ("sigma2", "likelihood"):
        raise ValueError(f"weighting must be 'sigma2' or 'likelihood', got {weighting!r}")
    if not module.has_kernel:
        module.perturbation_kernel(x0, 0.0)  # raises the explanation
    score = require_net(getattr(module, "score", None), "score")
    x0 = jnp.asarray(x0)
    key = as_key(seed) if key is None else key
    k_t, k_eps = jax.random.split(key)
    t = jax.random.uniform(k_t, x0.shape[:-1], x0.dtype, float(module.t0) + t_min, float(module.t1))
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    mean, spread = module.perturbation_kernel(x0, t)
    if module.kernel_is_diagonal:
        xt = mean + spread * eps
        s = score(xt, t)
        if weighting == "sigma2":
            per = jnp.sum((spread * s + eps) ** 2, axis=-1)
        else:
            per = _quadratic_diffusion(module, t, xt, s + eps / spread)
    else:
        L = jnp.linalg.cholesky(spread)
        xt = mean + jnp.einsum("...ij,...j->...i", L, eps)
        s = score(xt, t)
        if weighting == "sigma2":
            per = jnp.sum((jnp.einsum("...ji,...j->...i", L, s) + eps) ** 2, axis=-1)
        else:
            target = -solve_triangular(jnp.swapaxes(L, -1, -2), eps[..., None], lower=False)[..., 0]
            per = _quadratic_diffusion(module, t, xt, s - target)
    return jnp.mean(per)
