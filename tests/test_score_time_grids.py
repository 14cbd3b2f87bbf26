"""Time grids, the host-side schedule of an affine SDE and the few-step samplers' interface.

The schedule is checked against closed forms that do not come from sdelang's kernel: VP's
α = e^{-B/2}, σ² = 1 - e^{-B} (B = β_min t + (β_max - β_min) t²/2), so λ = -½ log(e^B - 1) and its
inverse t(λ) solves B(t) = log(1 + e^{-2λ}); VE's σ² = σ_min²(r^{2t} - 1); CLD's Φ(t) = exp(A t).
The EDM grid is Karras et al.'s eq. 5 in ρ = σ/α.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import score_backends as sb
from score_backends import B_MAX, B_MIN, S_MAX, S_MIN, backend  # noqa: F401  (fixture)

from sdelang.score.affine_schedule import AffineSchedule
from sdelang.score.time_grids import time_grid


def vp_B(t):
    return B_MIN * t + 0.5 * (B_MAX - B_MIN) * t ** 2


def vp_time_of(lam):
    target = np.log1p(np.exp(-2 * lam))                   # B(t) = log(1 + e^{-2λ})
    a, b = 0.5 * (B_MAX - B_MIN), B_MIN
    return (-b + np.sqrt(b * b + 4 * a * target)) / (2 * a)


TS = np.array([1e-3, 0.01, 0.2, 0.5, 1.0])


def test_the_vp_schedule_is_the_closed_form(backend):
    schedule = AffineSchedule(backend.compile("vp"))
    m = schedule.moments(TS)
    np.testing.assert_allclose(m.alpha[:, 0], np.exp(-vp_B(TS) / 2), rtol=1e-6)
    np.testing.assert_allclose(m.cov[:, 0], -np.expm1(-vp_B(TS)), rtol=1e-6)
    np.testing.assert_allclose(schedule.diffusion(TS)[:, 0], B_MIN + TS * (B_MAX - B_MIN), rtol=1e-6)
    lam = -0.5 * np.log(np.expm1(vp_B(TS)))
    np.testing.assert_allclose(schedule.reference_log_snr(TS), lam, rtol=1e-6)
    np.testing.assert_allclose(schedule.time_of_log_snr(lam), vp_time_of(lam), rtol=1e-6)


def test_the_ve_schedule_is_the_closed_form(backend):
    m = AffineSchedule(backend.compile("ve")).moments(TS)
    np.testing.assert_allclose(m.alpha[:, 0], 1.0)
    np.testing.assert_allclose(m.cov[:, 0], S_MIN ** 2 * ((S_MAX / S_MIN) ** (2 * TS) - 1), rtol=1e-6)


def test_the_cld_transition_is_the_matrix_exponential(backend):
    from scipy.linalg import expm

    schedule = AffineSchedule(backend.compile("cld"))
    A = 4.0 * np.array([[0.0, 4.0], [-1.0, -4.0]])         # beta [[0, 1/M], [-1, -Gamma/M]]
    m = schedule.moments(TS)
    assert not schedule.diagonal
    for t, phi in zip(TS, m.phi):
        np.testing.assert_allclose(phi, expm(A * t), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(schedule.diffusion(TS)[:, 1, 1], 8.0, rtol=1e-6)


@pytest.mark.torch
def test_grids_run_from_t1_to_t_min_as_their_formulas_say():
    B = sb.backend_or_skip("torch")
    schedule = AffineSchedule(B.compile("vp"))
    N, t_end = 10, 1e-3
    u = np.arange(N + 1) / N
    np.testing.assert_allclose(time_grid(schedule, N, t_end, "uniform"), 1 - u * (1 - t_end))
    np.testing.assert_allclose(time_grid(schedule, N, t_end, "quadratic"), t_end + (1 - t_end) * (1 - u) ** 2)
    lam = -0.5 * np.log(np.expm1(vp_B(np.array([1.0, t_end]))))
    np.testing.assert_allclose(time_grid(schedule, N, t_end, "log-snr"),
                               vp_time_of(lam[0] + u * (lam[1] - lam[0])), rtol=1e-6)
    r_max, r_min = np.exp(-lam / 7)
    rho = (r_max + u * (r_min - r_max)) ** 7              # Karras et al. 2022, eq. 5, in ρ = σ/α
    np.testing.assert_allclose(time_grid(schedule, N, t_end, "edm"), vp_time_of(-np.log(rho)), rtol=1e-6)
    with pytest.raises(ValueError, match="grid must be one of"):
        time_grid(schedule, N, t_end, "cosine")


@pytest.mark.torch
def test_the_coupled_log_snr_is_the_volume_ratio():
    """CLD: λ = (log det Φ - ½ log det Σ)/n with det Φ = e^{t tr A} (Jacobi's formula), decreasing,
    so log-SNR grids exist for coupled kernels too."""
    B = sb.backend_or_skip("torch")
    schedule = AffineSchedule(B.compile("cld"))
    trace_A = 4.0 * (0.0 - 4.0)
    cov = schedule.moments(TS).cov
    expected = (TS * trace_A - 0.5 * np.log(np.linalg.det(cov))) / 2
    np.testing.assert_allclose(schedule.reference_log_snr(TS), expected, rtol=1e-9)
    grid = time_grid(schedule, 10, 1e-3, "log-snr")
    lam = schedule.reference_log_snr(grid)
    np.testing.assert_allclose(np.diff(lam), (lam[-1] - lam[0]) / 10, rtol=1e-6)


@pytest.mark.torch
def test_the_semilinear_transition_and_quadrature_are_exact_where_known():
    """Ψ conserves yᵀΣ⁻¹y (Ψᵀ Σ_t⁻¹ Ψ = Σ_s⁻¹) and the coefficients of a constant x̂_0 sum to
    Φ_t - Ψ Φ_s (y = Φ x̂_0 solves the semi-linear flow)."""
    from sdelang.score.semilinear import SemilinearSteps

    B = sb.backend_or_skip("torch")
    schedule = AffineSchedule(B.compile("cld"))
    ts = time_grid(schedule, 20, 1e-3, "log-snr")
    steps = SemilinearSteps(schedule, ts)
    _, _, ms, mt = schedule.step_moments(ts)
    psi = steps.transition
    kept = np.swapaxes(psi, 1, 2) @ np.linalg.inv(mt.cov) @ psi
    np.testing.assert_allclose(kept, np.linalg.inv(ms.cov), rtol=1e-7, atol=1e-7 * np.abs(kept).max())
    linear = steps.coefficients(np.stack([steps.lam_s, steps.lam_t], axis=1)).sum(axis=1)
    np.testing.assert_allclose(linear, mt.phi - psi @ ms.phi, atol=1e-6)


@pytest.mark.torch
def test_the_interface_refuses_what_it_cannot_do():
    B = sb.backend_or_skip("torch")
    vp, cld, gbm = B.compile("vp"), B.compile("cld"), B.compile("gbm")
    score = lambda x, t: -x  # noqa: E731
    with pytest.raises(ValueError, match="order"):
        B.lib.sample(vp, 8, "dpm-solver", steps=5, order=4, score=score)
    with pytest.raises(ValueError, match="no order"):
        B.lib.sample(vp, 8, "em", steps=5, order=2, score=score)
    assert B.lib.sample(vp, 8, "ode", steps=5, score=score).samples.shape == (8, 2)   # adaptive: steps ignored
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        B.lib.sample(vp, 8, "ddim", steps=0, score=score)
    with pytest.raises(ValueError, match="diagonal perturbation kernel"):
        B.lib.sample(cld, 8, "dpm-solver", steps=5, score=score)
    with pytest.raises(ValueError, match="method must be one of"):
        B.lib.sample(vp, 8, "unipc", steps=5, score=score)
    with pytest.raises(ValueError, match="Gaussian perturbation kernel|prior"):
        B.lib.sample(gbm, 8, "ddim", steps=5, score=score, x_init=np.ones((8, 1)))


def test_score_model_samples_with_every_method(backend):
    """ScoreModel.sample forwards method, steps and order, and the samples have the data's shape."""
    model = backend.lib.ScoreModel(sb.EXAMPLES / "vp.sde", hidden=16, depth=1)
    for method, order, nfe in [("ddim", None, 4), ("dpm-solver", 2, 8), ("dpm-solver++", 3, 5), ("deis", 2, 4),
                               ("heun", None, 8), ("ancestral", 2, 4)]:
        result = model.sample(16, method=method, steps=4, order=order)
        assert backend.to_numpy(result.samples).shape == (16, 2) and result.nfe == nfe, (method, result.nfe)
        assert np.all(np.isfinite(backend.to_numpy(result.samples)))
    assert model.sample(4, method="ddim").nfe == 20          # the few-step default
    assert math.isfinite(float(backend.to_numpy(model.sample(4, method="em", steps=3).samples).sum()))
