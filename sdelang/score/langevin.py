"""The Langevin corrector of predictor–corrector sampling (Song et al. 2021, Alg. 4–5, as in
score_sde), written once for both backends."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .defaults import EXACT_TRACE_MAX_DIM


@dataclass(frozen=True)
class Corrector:
    """Corrector settings: ``steps`` Langevin steps at signal-to-noise ratio ``snr``; ``alpha`` is
    score_sde's α_i ("auto": exp(2 h (1/n) tr ∂f/∂x), i.e. 1 - β_i h for VP and 1 for VE)."""

    snr: float
    steps: int
    alpha: Union[str, float] = "auto"

    def __post_init__(self):
        if not self.snr > 0:
            raise ValueError(f"snr must be positive, got {self.snr}")
        if int(self.steps) != self.steps or self.steps < 0:
            raise ValueError(f"corrector_steps must be an integer ≥ 0, got {self.steps}")
        if self.alpha != "auto" and not float(self.alpha) > 0:
            raise ValueError(f"corrector_alpha must be 'auto' or positive, got {self.alpha!r}")


def mean_drift_slope(forward, t, y):
    """(1/n) tr ∂f/∂x of the forward drift at (t, y), averaged over the batch: exact for
    n ≤ EXACT_TRACE_MAX_DIM, else Hutchinson with one fixed Rademacher vector. An affine model
    """
    ops = forward.ops
    n = y.shape[-1]
    eps = None if n <= EXACT_TRACE_MAX_DIM else ops.stream(0, device=ops.device_of(y)).rademacher(y.shape, y.dtype)
    _, div = ops.divergence(lambda z: forward.drift_fn(t, z), y, eps)
    return ops.mean(div) / n


def affine_slope_schedule(forward, times, like):
    """(1/n) tr ∂f/∂x at each of ``times`` for an affine model (one with a Gaussian kernel), whose
    slope does not depend on x: one divergence of the drift on a batch of zero states, one row per
    time, before the loop (exact for n ≤ EXACT_TRACE_MAX_DIM, else Hutchinson, which is exact for a
    diagonal drift matrix), as the loop indexes it (``ops.step_table``). None for a model that is
    not affine (the slope is then taken in the loop)."""
    if forward.kernel_kind is None:
        return None
    ops = forward.ops
    rows = ops.zeros((times.shape[0],) + tuple(like.shape[1:]), like)
    n = like.shape[-1]
    eps = None if n <= EXACT_TRACE_MAX_DIM else ops.stream(0, device=ops.device_of(like)).rademacher(rows.shape, like.dtype)
    _, div = ops.divergence(lambda z: forward.drift_fn(times, z), rows, eps)
    return ops.step_table(div / n)


def langevin_correct(forward, score, y, t, noise, corrector: Corrector, h, slope=None):
    """``corrector.steps`` steps x ← x + ε s(x, t) + √(2ε) z with ε = 2 α (snr ‖z‖ / ‖s‖)², the
    norms per sample and averaged over the batch (score_sde's ``LangevinCorrector``). ``slope``:
    (1/n) tr ∂f/∂x at t when it is known already (see :func:`affine_slope_schedule`)."""
    ops = forward.ops
    if corrector.alpha == "auto":
        alpha = ops.exp(2 * h * (mean_drift_slope(forward, t, y) if slope is None else slope))
    else:
        alpha = float(corrector.alpha)
    t_vec = ops.full(y.shape[:1], t, like=y)
    for _ in range(corrector.steps):
        grad = score(y, t_vec)
        z = noise.normal(y.shape, y.dtype)
        ratio = corrector.snr * ops.mean(ops.norm_rows(z)) / ops.mean(ops.norm_rows(grad))
        eps = ops.cast(2 * alpha * ratio ** 2, y.dtype)
        y = y + eps * grad + ops.sqrt(2 * eps) * z
    return y
