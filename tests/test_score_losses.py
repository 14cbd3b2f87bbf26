"""Score-matching losses of sdelang.score (denoising and sliced) on both backends, against exact
scores of Gaussian data in closed form.

Gaussian data N(μ, S) under an affine SDE with kernel x_t | x_0 ~ N(A_t x_0 + b_t, Σ_t) has
p_t = N(A_t μ + b_t, P_t), P_t = A_t S A_tᵀ + Σ_t; A_t, b_t and Σ_t are read off the module's
generated kernel by probing it with unit vectors (diagonal VP and full CLD kernels alike), and the
2 × 2 algebra is written out on columns so the same code runs on torch and JAX arrays. At the
exact score E[‖Lᵀ s + ε‖² | t] = n - tr(P_t⁻¹ Σ_t) (VERIFICATION.md). Every check is paired with a
scaled or shifted score it must tell apart.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from score_backends import ALPHA, B_MAX, B_MIN, DIAGONAL, GAUSSIAN, T_MIN, backend, mixture  # noqa: F401

VP_DATA = ((1.0, -0.5), ((1.0, 0.6), (0.6, 0.5)))
CLD_DATA = ((0.5, 0.0), ((0.09, 0.0), (0.0, 0.01)))
DATA = {"vp": VP_DATA, "cld": CLD_DATA}


def draws(data, n, seed):
    mu, S = data
    return np.random.default_rng(seed).multivariate_normal(mu, S, size=n)


def kernel_gaussian(B, module, data, t, like):
    """(m_t, P_t, Σ_t) for Gaussian data under ``module``'s kernel at times t (batch,): m_t as two
    columns, P_t and Σ_t as their entries (00, 01, 11)."""
    mu, S = data
    col = like[:, 0]
    zero, one = 0 * col, 0 * col + 1
    mean0, spread = module.perturbation_kernel(B.stack([zero, zero]), t)
    cols = [module.perturbation_kernel(B.stack(e), t)[0] - mean0 for e in ([one, zero], [zero, one])]
    A = [[cols[j][:, i] for j in range(2)] for i in range(2)]        # A[i][j] = ∂m_i/∂x0_j
    if spread.ndim == 3:
        sigma = (spread[:, 0, 0], spread[:, 0, 1], spread[:, 1, 1])
    else:
        sigma = (spread[:, 0] ** 2, zero, spread[:, 1] ** 2)
    m = [mean0[:, i] + A[i][0] * mu[0] + A[i][1] * mu[1] for i in range(2)]

    def asa(i, j):
        return sum(A[i][k] * S[k][l] * A[j][l] for k in range(2) for l in range(2))

    P = (asa(0, 0) + sigma[0], asa(0, 1) + sigma[1], asa(1, 1) + sigma[2])
    return m, P, sigma


def dsm_constant(B, module, data, t, like):
    """n - tr(P_t⁻¹ Σ_t) per row."""
    _, (p00, p01, p11), (c00, c01, c11) = kernel_gaussian(B, module, data, t, like)
    return 2 - (p11 * c00 - 2 * p01 * c01 + p00 * c11) / (p00 * p11 - p01 ** 2)


def gaussian_score(B, module, data, factor=1.0, shift=0.0):
    """factor · ∇log p_t + shift = -factor · P_t⁻¹ (x - m_t) + shift."""
    def score(x, t):
        t = t if getattr(t, "ndim", 0) == 1 else 0 * x[:, 0] + t
        (m0, m1), (p00, p01, p11), _ = kernel_gaussian(B, module, data, t, x)
        det = p00 * p11 - p01 ** 2
        r0, r1 = x[:, 0] - m0, x[:, 1] - m1
        return factor * B.stack([-(p11 * r0 - p01 * r1) / det, -(p00 * r1 - p01 * r0) / det]) + shift
    return score


def loss_value(x):
    return float(np.asarray(x.detach() if hasattr(x, "detach") else x))


# ------------------------------------------------------------------------------ DSM
@pytest.mark.parametrize("spec", ["vp", "cld"])
def test_dsm_expectation_at_the_exact_score_equals_the_closed_form_constant(backend, spec):
    """Per chunk, the DSM loss minus the mean of n - tr(P_t⁻¹Σ_t) over the loss's own t draws (the
    first draw of ``ops.stream(seed)``): a one-sample t-test over 20 chunks accepts 0 at the exact
    score and rejects it (with a positive mean) for the score × 1.2."""
    B, module = backend, backend.compile(spec)
    data = DATA[spec]
    exact, bad = gaussian_score(B, module, data), gaussian_score(B, module, data, factor=1.2)
    diffs, diffs_bad = [], []
    for chunk in range(20):
        x0 = B.asarray(draws(data, 4000, 100 + chunk))
        t = module.ops.stream(chunk).uniform((4000,), float(module.t0) + T_MIN, float(module.t1), B.f64)
        const = loss_value(module.ops.mean(dsm_constant(B, module, data, t, x0)))
        diffs.append(loss_value(B.lib.dsm_loss(module, x0, seed=chunk, score=exact)) - const)
        diffs_bad.append(loss_value(B.lib.dsm_loss(module, x0, seed=chunk, score=bad)) - const)
    assert stats.ttest_1samp(diffs, 0.0).pvalue > ALPHA
    assert stats.ttest_1samp(diffs_bad, 0.0).pvalue < ALPHA and np.mean(diffs_bad) > 0


@pytest.mark.parametrize("spec", ["vp", "cld"])
@pytest.mark.parametrize("weighting", ["sigma2", "likelihood", "none"])
def test_dsm_is_smallest_at_the_exact_score(backend, spec, weighting):
    """Common random numbers (one seed): E DSM(s) - E DSM(s*) = E (s - s*)ᵀ Λ (s - s*) > 0."""
    B, module = backend, backend.compile(spec)
    data = DATA[spec]
    x0 = B.asarray(draws(data, 20000, 0))
    t_min = 1e-2 if weighting == "none" else T_MIN  # Λ = I: variance ∝ 1/σ_t², keep t away from 0

    def loss(**wrong):
        return loss_value(B.lib.dsm_loss(module, x0, t_min=t_min, weighting=weighting, seed=1,
                                         score=gaussian_score(B, module, data, **wrong)))

    best = loss()
    for wrong in (dict(factor=0.9), dict(factor=1.1), dict(shift=0.3)):
        assert best < loss(**wrong), wrong


def test_dsm_on_a_diagonal_kernel_is_the_written_formula(backend):
    """VP, with t and ε drawn by hand from the same stream and the kernel by hand (not generated):
    λ = σ²: ‖σ_t s(x_t, t) + ε‖²; λ = g² = β(t): β(t) ‖s + ε/σ_t‖²; λ = I: ‖s + ε/σ_t‖²."""
    B, module = backend, backend.compile("vp")
    exact = mixture(B.name, "vp", GAUSSIAN)
    x0n = exact.sample(0.0, 500, seed=0)
    stream = module.ops.stream(7)
    t = B.to_numpy(stream.uniform((500,), T_MIN, 1.0, B.f64))
    eps = B.to_numpy(stream.normal((500, 2), B.f64))
    a2, s2, a = exact.coefficients(t, np.exp)
    alpha, sigma = a[:, None], np.sqrt(s2)[:, None]
    s = B.to_numpy(exact(B.asarray(alpha * x0n + sigma * eps), B.asarray(t)))
    beta = (B_MIN + t * (B_MAX - B_MIN))[:, None]
    by_hand = {"sigma2": ((sigma * s + eps) ** 2).sum(-1).mean(),
               "likelihood": (beta * (s + eps / sigma) ** 2).sum(-1).mean(),
               "none": ((s + eps / sigma) ** 2).sum(-1).mean()}
    x0 = B.asarray(x0n)
    for weighting, expected in by_hand.items():
        ours = loss_value(B.lib.dsm_loss(module, x0, weighting=weighting, seed=7, score=exact))
        assert ours == pytest.approx(expected, rel=1e-9), weighting
        attached = loss_value(module.with_score(exact).dsm_loss(x0, weighting=weighting, seed=7))
        assert attached == ours
        streamed = loss_value(B.lib.dsm_loss(module, x0, weighting=weighting, stream=module.ops.stream(7), score=exact))
        assert streamed == ours
    with pytest.raises(ValueError):
        B.lib.dsm_loss(module, x0, weighting="sigma", score=exact)
    with pytest.raises(NotImplementedError):  # no Gaussian kernel: DSM is not defined
        B.lib.dsm_loss(B.compile("gbm"), B.asarray(np.ones((4, 1))), score=lambda x, t: x)


def test_dsm_vanishes_for_the_conditional_score_of_a_point_mass(backend):
    """Data = one point x0: p_t = N(α_t x0, σ_t² I) and σ_t s + ε = 0 exactly; the score × 2 gives
    E‖ε‖² = n = 2 with sampling sd √(2n/N)."""
    B, module = backend, backend.compile("vp")
    point = dict(weights=[1.0], means=[[1.0, -0.5]], covs=[[0.0, 0.0, 0.0]])
    exact = mixture(B.name, "vp", point)
    x0 = B.asarray(np.tile([1.0, -0.5], (4096, 1)))
    assert loss_value(B.lib.dsm_loss(module, x0, seed=0, score=exact)) < 1e-18
    assert loss_value(B.lib.dsm_loss(module, x0, weighting="likelihood", seed=1, score=exact)) < 1e-12
    wrong = loss_value(B.lib.dsm_loss(module, x0, seed=2, score=exact.scaled(2.0)))
    assert abs(wrong - 2.0) < 4 * math.sqrt(4 / 4096)


@pytest.mark.parametrize("weighting", ["sigma2", "likelihood", "none"])
def test_full_covariance_dsm_vanishes_at_the_conditional_score(backend, weighting):
    """CLD (a coupled (mean, cov) kernel, the Cholesky path): data = one point, the exact score
    -Σ_t⁻¹(y - m_t) gives 0 for every weighting; the score × 2 a loss of the scale of s = 0's."""
    B, module = backend, backend.compile("cld")
    assert module.kernel_kind == "full"
    point = ((1.0, 1.0), ((0.0, 0.0), (0.0, 0.0)))
    x0 = B.asarray(np.ones((1024, 2)))

    def loss(score):
        return loss_value(B.lib.dsm_loss(module, x0, weighting=weighting, seed=0, score=score))

    scale = 1.0 if weighting == "sigma2" else loss(lambda y, t: 0 * y)
    assert loss(gaussian_score(B, module, point)) < 1e-12 * scale
    assert loss(gaussian_score(B, module, point, factor=2.0)) > 0.1 * scale


def test_perturbation_kernel_matches_the_closed_form(backend):
    B, module = backend, backend.compile("vp")
    x0 = np.random.default_rng(5).normal(size=(10, 2))
    t = np.linspace(0.01, 1.0, 10)
    mean, std = module.perturbation_kernel(B.asarray(x0), B.asarray(t))
    alpha = np.exp(-0.5 * (B_MIN * t + 0.5 * (B_MAX - B_MIN) * t ** 2))[:, None]
    np.testing.assert_allclose(B.to_numpy(mean), alpha * x0, rtol=1e-10)
    np.testing.assert_allclose(B.to_numpy(std), np.broadcast_to(np.sqrt(1 - alpha ** 2), (10, 2)), rtol=1e-10)
    assert module.kernel_kind == "diagonal" and B.compile("gbm").kernel_kind is None


# ------------------------------------------------------------------------------ SSM
@pytest.mark.parametrize("weighting", ["none", "sigma2", "likelihood"])
def test_ssm_is_minimised_by_the_true_score_and_has_the_predicted_value(backend, weighting):
    """Gaussian p_t with independent components of variances v_i: vᵀ J v = -Σ w_i²/v_i = -c exactly
    (Rademacher v, diagonal J) and ½(vᵀ W s)² = ½ c χ²₁, so E[SSM(s*) | t] = -½ c with variance c²/2:
    the loss is within 5 standard errors √(mean(c²/2)/N) of -½ mean(c) over its own t draws."""
    B, module = backend, backend.compile("vp")
    exact = mixture(B.name, "vp", DIAGONAL)
    n = 20000
    x0 = B.asarray(exact.sample(0.0, n, seed=3))

    def loss(score):
        return loss_value(B.lib.ssm_loss(module, x0, weighting=weighting, seed=4, score=score))

    true = loss(exact)
    for wrong in (exact.scaled(1.2), exact.scaled(0.8), lambda y, t: exact(y, t) + 0.3):
        assert loss(wrong) > true
    t = B.to_numpy(module.ops.stream(4).uniform((n,), T_MIN, 1.0, B.f64))[:, None]  # the loss's first draw
    a2, s2, _ = exact.coefficients(t, np.exp)
    v = a2 * np.array([0.25, 0.04]) + s2
    w2 = {"none": np.ones_like(v), "sigma2": s2 * np.ones_like(v),
          "likelihood": (B_MIN + t * (B_MAX - B_MIN)) * np.ones_like(v)}[weighting]
    c = np.sum(w2 / v, axis=-1)
    se = math.sqrt(np.mean(c ** 2 / 2) / n)
    assert abs(true + 0.5 * np.mean(c)) < 5 * se
    with pytest.raises(ValueError):
        B.lib.ssm_loss(module, x0, projection="uniform", score=exact)
    with pytest.raises(ValueError):
        B.lib.ssm_loss(module, x0, weighting="sigma", score=exact)


def test_ssm_and_dsm_are_stationary_along_the_exact_score(backend):
    """Both losses along s_c = c ∇log p_t are quadratics in c, so the central difference
    (L(c + ½) - L(c - ½)) with common random numbers is their exact derivative: over 12 chunks a
    t-test accepts a zero derivative at c = 1 and rejects it at c = 1.3."""
    B, module = backend, backend.compile("vp")
    data = VP_DATA
    derivatives = {(name, c): [] for name in ("ssm", "dsm") for c in (1.0, 1.3)}
    for chunk in range(12):
        x0 = B.asarray(draws(data, 2000, chunk))
        for name, loss in (("ssm", B.lib.ssm_loss), ("dsm", B.lib.dsm_loss)):
            for c in (1.0, 1.3):
                value = [loss_value(loss(module, x0, weighting="sigma2", seed=50 + chunk,
                                         score=gaussian_score(B, module, data, factor=c + h))) for h in (0.5, -0.5)]
                derivatives[name, c].append(value[0] - value[1])
    for (name, c), values in derivatives.items():
        p = stats.ttest_1samp(values, 0.0).pvalue
        assert (p > ALPHA) if c == 1.0 else (p < ALPHA and np.mean(values) > 0), (name, c, p)


def test_ssm_without_a_kernel_simulates_the_forward_sde(backend):
    """Stationary OU started at N(0, v∞) (use_kernel=False: the forward SDE simulated by EM):
    p_t = N(0, v∞) for all t, score -x/v∞, and E SSM = E[s'] + ½ E[s²] = -1/v∞ + 1/(2v∞) = -1/(2v∞)
    (relative sd √2/√N = 1 % at N = 2e4; EM's stationary variance is off by θh/2 = 0.5 %)."""
    B, module = backend, backend.compile("ou")
    v_inf = 0.5 ** 2 / 2
    x0 = B.asarray(math.sqrt(v_inf) * np.random.default_rng(0).standard_normal((20000, 1)))

    def ssm(factor):
        return loss_value(B.lib.ssm_loss(module, x0, use_kernel=False, seed=4, score=lambda x, t: -factor * x / v_inf))

    assert ssm(1.0) < ssm(0.8) and ssm(1.0) < ssm(1.25)
    assert ssm(1.0) == pytest.approx(-1 / (2 * v_inf), rel=0.05)
    gbm = B.compile("gbm")  # no kernel at all: the simulated path is the only one
    value = loss_value(B.lib.ssm_loss(gbm, B.asarray(np.ones((64, 1))), seed=1, sim_steps=20,
                                      score=lambda x, t: -x))
    assert math.isfinite(value)
