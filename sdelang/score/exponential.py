"""Exponential integrators of the probability-flow ODE of an affine SDE, as tableaus
(:mod:`sdelang.score.tableau`) derived from the spec's own kernel.

With y = x - m(t) the flow dx/dt = A x + b - ½ D ∇log p_t is dy/dt = A y + ½ D L⁻ᵀ ε̂, whose linear
part is solved exactly by the kernel's transition Φ(t, s):

    y_t = Φ(t, s) y_s + ∫_s^t Φ(t, τ) ½ D(τ) L(τ)⁻ᵀ ε̂(x_τ, τ) dτ.                         (*)

Diagonal kernels (α, σ, λ = log(α/σ) per component; Lu et al. 2022, eqs. 3.4-3.6) turn (*) into
y_t = (α_t/α_s) y_s - α_t ∫_{λ_s}^{λ_t} e^{-λ} ε̂ dλ, or, in the data prediction x̂_0,
y_t = (σ_t/σ_s) y_s + σ_t ∫_{λ_s}^{λ_t} e^{λ} x̂_0 dλ; with h = λ_t - λ_s:

- ``ddim``: x̂_0 constant:  y_t = (σ_t/σ_s) y_s - α_t (e^{-h} - 1) x̂_0(s);
- ``dpm-solver`` (singlestep, noise prediction, order 1-3; Lu et al. 2022, Algorithms 1-2, with
  intermediate points at λ_s + r h, r = ½ or (⅓, ⅔));
- ``dpm-solver++`` (multistep, data prediction, order 1-3; Lu et al. 2022b, Algorithm 2; on
  coupled kernels its semi-linear form, :mod:`sdelang.score.semilinear`): x̂_0
  interpolated in λ through its last k values and integrated exactly against e^{λ} (the
  "taylor" form of 2M, and the exact third-order term for 3M),
  lower orders in the first steps and, below 10 steps, the last; order 3 starts with one
  DPM-Solver++(2S) step (a first-order start would cap its order at 2).

Any kernel, coupled ones such as CLD included (Zhang & Chen 2022, DEIS):

- ``deis``: ε̂ extrapolated by the Lagrange polynomial in log(τ - t0) through the last k grid times
  (DEIS's AB form), C_j = ∫_s^t Φ(t, τ) ½ D(τ) L(τ)⁻ᵀ ℓ_j(τ) dτ by Gauss–Legendre quadrature in
  log(τ - t0), where the τ^p behaviour of Σ near t0 becomes smooth. A coupled kernel extrapolates
  the score itself, C_j = -½ ∫_s^t Φ(t, τ) D(τ) ℓ_j(τ) dτ: its L⁻ᵀ is ill-conditioned near t0
  (CLD's Σ_xx ~ t³). Order 3 starts with one Heun step (in t, on the score, for a coupled kernel).
"""
from __future__ import annotations

import numpy as np

from .heun import heun
from .interpolation import exponential_integrals, interpolation_weights, lagrange_basis
from .predictions import data_prediction, noise_prediction, score_itself, transition
from .semilinear import semilinear_multistep
from .tableau import Tableau, keys, step_orders

QUADRATURE_NODES = 24


def ddim(schedule, ts) -> Tableau:
    """DDIM = DPM-Solver-1 = DPM-Solver++1; on a coupled kernel its semi-linear form
    (:mod:`sdelang.score.semilinear`)."""
    return dpm_solver_pp(schedule, ts, 1, method="ddim")


def dpm_solver(schedule, ts, order: int) -> Tableau:
    """Singlestep DPM-Solver of ``order`` 1, 2 or 3 (noise prediction; NFE = order per step)."""
    schedule.require_diagonal("dpm-solver")
    s, t, ms, mt = schedule.step_moments(ts)
    key = keys(schedule, len(s))
    lam_s, lam_t = schedule.reference_log_snr(s), schedule.reference_log_snr(t)
    ratios = {1: (), 2: (0.5,), 3: (1 / 3, 2 / 3)}[order]
    stage_times = [s] + [schedule.time_of_log_snr(lam_s + r * (lam_t - lam_s)) for r in ratios]
    stage = [ms] + [schedule.moments(tau) for tau in stage_times[1:]]
    y = key("x") - ms.offset
    h = mt.log_snr - ms.log_snr

    def carried(m):
        """The linear part carried exactly from s to a point with moments m: m + (α/α_s) y_s."""
        return m.offset + (m.alpha / ms.alpha) * y

    e = [key(f"o{k}") for k in range(order)]
    inputs = [key("x")]
    if order == 1:
        final = carried(mt) - (mt.sigma * np.expm1(h)) * e[0]
    elif order == 2:
        h1 = stage[1].log_snr - ms.log_snr
        r1 = h1 / h
        inputs.append(carried(stage[1]) - (stage[1].sigma * np.expm1(h1)) * e[0])
        final = (carried(mt) - (mt.sigma * np.expm1(h)) * e[0]
                 - (mt.sigma / (2 * r1) * np.expm1(h)) * (e[1] - e[0]))
    else:
        h1, h2 = stage[1].log_snr - ms.log_snr, stage[2].log_snr - ms.log_snr
        r1, r2 = h1 / h, h2 / h
        inputs.append(carried(stage[1]) - (stage[1].sigma * np.expm1(h1)) * e[0])
        inputs.append(carried(stage[2]) - (stage[2].sigma * np.expm1(h2)) * e[0]
                      - (stage[2].sigma * r2 / r1 * (np.expm1(h2) / h2 - 1)) * (e[1] - e[0]))
        final = (carried(mt) - (mt.sigma * np.expm1(h)) * e[0]
                 - (mt.sigma / r2 * (np.expm1(h) / h - 1)) * (e[2] - e[0]))
    return Tableau("dpm-solver", np.stack(stage_times, axis=1), inputs + [final],
                   [noise_prediction(m) for m in stage])


def dpm_solver_pp(schedule, ts, order: int, method: str = "dpm-solver++") -> Tableau:
    """Multistep DPM-Solver++ of ``order`` 1, 2 or 3 (data prediction; NFE = 1 per step): x̂_0 as
    the polynomial in λ through its last k values (k = the step's order), integrated exactly,

        y_t = (σ_t/σ_s) y_s + α_t Σ_j w_j x̂_0(s_{i-j}),   w_j = ∫_0^h e^{τ-h} ℓ_j(τ) dτ,

    τ = λ - λ_s, ℓ_j the Lagrange basis through τ_j = λ(s_{i-j}) - λ_s; order 1 is DDIM. A coupled
    kernel has no λ: :func:`~sdelang.score.semilinear.semilinear_multistep` (the same in u = log(t - t0))."""
    if not schedule.diagonal:
        return semilinear_multistep(schedule, ts, order, method)
    s, t, ms, mt = schedule.step_moments(ts)
    steps = len(s)
    key = keys(schedule, steps)
    lam_past = [ms.log_snr[np.maximum(np.arange(steps) - j, 0)] for j in range(order)]  # (N, n) each
    h = mt.log_snr - ms.log_snr
    orders = step_orders(steps, order)
    final = mt.offset + (mt.sigma / ms.sigma) * (key("x") - ms.offset)
    for k in range(1, order + 1):
        rows = orders == k
        if not rows.any():
            continue
        points = np.stack([lam_past[j][rows] - ms.log_snr[rows] for j in range(k)], axis=-1)
        weights = interpolation_weights(points, exponential_integrals(h[rows], k))   # (N_k, n, k)
        for j in range(k):
            w = np.zeros_like(h)
            w[rows] = weights[..., j]
            final = final + (mt.alpha * w) * key("o0" if j == 0 else f"h{j - 1}")
    tableau = Tableau(method, s[:, None], [key("x"), final], [data_prediction(ms)], history=max(order - 1, 0))
    if order == 3 and steps > 1:
        return tableau.after_start(dpm_solver_pp_2s(schedule, ts[:2]))
    return tableau


def dpm_solver_pp_2s(schedule, ts, r: float = 0.5) -> Tableau:
    """Singlestep DPM-Solver++(2S) (Lu et al. 2022b, Algorithm 1), the start of the third-order
    multistep: u = m + (σ_u/σ_s) y_s - α_u (e^{-r h} - 1) x̂_0(s),
    y_t = (σ_t/σ_s) y_s - α_t (e^{-h} - 1) ((1 - 1/(2r)) x̂_0(s) + x̂_0(u)/(2r))."""
    s, t, ms, mt = schedule.step_moments(ts)
    key = keys(schedule, len(s))
    lam_s, lam_t = schedule.reference_log_snr(s), schedule.reference_log_snr(t)
    mid = schedule.time_of_log_snr(lam_s + r * (lam_t - lam_s))
    mm = schedule.moments(mid)
    y = key("x") - ms.offset
    h, h1 = mt.log_snr - ms.log_snr, mm.log_snr - ms.log_snr
    ratio = h1 / h
    middle = mm.offset + (mm.sigma / ms.sigma) * y - (mm.alpha * np.expm1(-h1)) * key("o0")
    blend = (1 - 1 / (2 * ratio)) * key("o0") + (1 / (2 * ratio)) * key("o1")
    final = mt.offset + (mt.sigma / ms.sigma) * y - (mt.alpha * np.expm1(-h)) * blend
    return Tableau("dpm-solver++", np.stack([s, mid], axis=1), [key("x"), middle, final],
                   [data_prediction(ms), data_prediction(mm)])


def deis(schedule, ts, order: int, method: str = "deis") -> Tableau:
    """tAB-DEIS of ``order`` 1-3 on any affine kernel: y_t = Φ(t, s) y_s + Σ_j C_j ε̂(t_{i-j})."""
    s, t, ms, mt = schedule.step_moments(ts)
    steps, n, t0 = len(s), schedule.n, schedule.t0
    key = keys(schedule, steps)
    nodes, weights = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
    u_s, u_t = np.log(s - t0), np.log(t - t0)
    u = 0.5 * (u_s + u_t)[:, None] + 0.5 * (u_t - u_s)[:, None] * nodes            # (N, G)
    tau = t0 + np.exp(u)
    w = 0.5 * (u_t - u_s)[:, None] * weights * np.exp(u)                          # dτ = e^u du
    flat = tau.ravel()
    mq = schedule.moments(flat)
    D = schedule.diffusion(flat)
    G = QUADRATURE_NODES
    if schedule.diagonal:
        mt_rep = np.repeat(mt.alpha, G, axis=0)
        kernel = (mt_rep / mq.alpha) * 0.5 * D / mq.sigma                            # (N·G, n)
        kernel = kernel.reshape(steps, G, n)
    else:                                                   # the score itself: Φ(t, τ) (-½ D(τ))
        phi_t = np.repeat(mt.phi, G, axis=0)
        kernel = (phi_t @ np.linalg.inv(mq.phi) @ (-0.5 * D)).reshape(steps, G, n, n)
    orders = step_orders(steps, order, lower_order_final=False)
    # the k most recent evaluation times at step i: s_i, s_{i-1}, ... (padded; unused entries masked)
    past = np.stack([u_s[np.maximum(np.arange(steps) - j, 0)] for j in range(order)], axis=1)
    final = transition(mt, ms) * (key("x") - ms.offset) + mt.offset
    for k in range(1, order + 1):
        rows = orders == k
        if not rows.any():
            continue
        basis = lagrange_basis(past[rows, :k], u[rows])                              # (N_k, k, G)
        for j in range(k):
            C = np.zeros(kernel.shape[:1] + kernel.shape[2:])
            C[rows] = np.einsum("tg,tg...->t...", w[rows] * basis[:, j], kernel[rows])
            final = final + C * key("o0" if j == 0 else f"h{j - 1}")
    prediction = noise_prediction(ms) if schedule.diagonal else score_itself(ms)
    tableau = Tableau(method, s[:, None], [key("x"), final], [prediction], history=max(order - 1, 0))
    if order == 3 and steps > 1:
        return tableau.after_start(heun(schedule, ts[:2]) if schedule.diagonal else _score_heun(schedule, ts[:2]))
    return tableau


def _score_heun(schedule, ts) -> Tableau:
    """One Heun step in t on w = Φ(t)⁻¹(x - m), dw/dt = -½ Φ⁻¹ D ∇log p_t, whose first output is the
    score (the start of DEIS of order 3 on a coupled kernel)."""
    s, t, ms, mt = schedule.step_moments(ts)
    key = keys(schedule, len(s))
    gain = [np.linalg.inv(m.phi) @ (-0.5 * schedule.diffusion(tau)) for m, tau in ((ms, s), (mt, t))]
    h = (t - s)[:, None, None]
    carried = transition(mt, ms) * (key("x") - ms.offset) + mt.offset
    euler = carried + (h * mt.phi @ gain[0]) * key("o0")
    final = carried + (0.5 * h * mt.phi) * (gain[0] * key("o0") + gain[1] * key("o1"))
    return Tableau("deis", np.stack([s, t], axis=1), [key("x"), euler, final], [score_itself(ms), score_itself(mt)])
