"""The score samplers of sdelang.score (EM, predictor–corrector, probability-flow ODE) on both
backends, with exact scores and no training (VERIFICATION.md, "Exact-score diffusion checks").

Samplers started from exact p_1 draws must reproduce exact p_{t_min} draws: the two-sample family
of ``sdelang.check.two_sample`` at α = 1e-3 against independent exact draws (N = 4000; the bias of
500 EM steps, O(h), is far below its resolution), and moment z-tests for Gaussian targets. Each
check is paired with a planted bug the same check must reject: a doubled score, a halved score in
the reverse SDE, a corrector stepping against the score.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import sdelang.score.samplers as samplers
from sdelang.score.langevin import Corrector, langevin_correct, mean_drift_slope

from score_backends import (ALPHA, B_MAX, B_MIN, GAUSSIAN, MIXTURE, T_MIN, TWO_MODES, accepts, backend,  # noqa: F401
                            gaussian_moment_pvalue, mixture)

N = 4000
SETTINGS = {"em": dict(steps=500), "pc": dict(steps=250), "ode": dict(rtol=1e-6, atol=1e-6)}
EXPECTED_NFE = {"em": 500, "pc": 500}  # pc: 250 · (1 + 1 corrector step)


def run(backend, method, score, x1, seed=3, sde="vp", **kw):
    options = {**SETTINGS[method], **kw}
    return backend.lib.sample(backend.compile(sde), len(x1), method, x_init=backend.asarray(x1), seed=seed,
                              score=score, dtype=backend.f64, **options)


# VE and the predictor–corrector take > 20 s on JAX (its compilations): marked slow
@pytest.mark.parametrize("sde", ["vp", pytest.param("ve", marks=pytest.mark.slow)])
@pytest.mark.parametrize("method", ["em", pytest.param("pc", marks=pytest.mark.slow), "ode"])
def test_samplers_with_the_exact_score_reproduce_p_tmin_and_a_doubled_score_fails(backend, sde, method):
    exact = mixture(backend.name, sde, MIXTURE)
    x1 = exact.sample(1.0, N, seed=1)
    reference = exact.sample(T_MIN, N, seed=2)
    result = run(backend, method, exact, x1, sde=sde)
    assert result.method == method and tuple(result.samples.shape) == (N, 2)
    assert accepts(backend.to_numpy(result.samples), reference)
    assert result.nfe == EXPECTED_NFE.get(method, result.nfe) and result.nfe > 0
    doubled = run(backend, method, exact.scaled(2.0), x1, sde=sde)
    assert not accepts(backend.to_numpy(doubled.samples), reference)


def test_pc_corrector_stepping_against_the_score_fails(backend, monkeypatch):
    exact = mixture(backend.name, "vp", MIXTURE)
    x1 = exact.sample(1.0, N, seed=1)
    reference = exact.sample(T_MIN, N, seed=2)
    good = run(backend, "pc", exact, x1, steps=100, corrector_steps=2)
    assert good.nfe == 100 * 3 and accepts(backend.to_numpy(good.samples), reference)

    original = samplers.langevin_correct

    def reversed_corrector(forward, score, *rest):
        return original(forward, lambda x, s: -score(x, s), *rest)

    monkeypatch.setattr(samplers, "langevin_correct", reversed_corrector)
    # a distinct (unequal) score: JAX traces the sampler afresh instead of reusing the good program
    bad = run(backend, "pc", exact.scaled(1.0, tag=1), x1, steps=100, corrector_steps=2)
    assert not accepts(backend.to_numpy(bad.samples), reference)


def test_pc_nfe_counts_predictor_and_corrector_and_auto_alpha_is_the_vp_discrete_alpha(backend):
    exact = mixture(backend.name, "vp", GAUSSIAN)
    x1 = exact.sample(1.0, 10, seed=0)
    result = run(backend, "pc", exact, x1, steps=40, corrector_steps=3)
    assert result.nfe == 40 * 4
    # α = exp(2 h (1/n) tr ∂f/∂x) = exp(-β(t) h) = score_sde's 1 - β_i h for f = -½ β(t) x.
    y = backend.asarray(np.random.default_rng(0).normal(size=(5, 2)))
    slope = float(mean_drift_slope(backend.compile("vp"), 0.3, y))
    assert slope == pytest.approx(-0.5 * (B_MIN + 0.3 * (B_MAX - B_MIN)), rel=1e-12)
    # VE has no drift: α = 1
    assert float(mean_drift_slope(backend.compile("ve"), 0.3, y)) == 0.0


@pytest.mark.parametrize("method", ["em", "pc", "ode"])
def test_reported_nfe_equals_the_score_evaluations_actually_made(backend, method):
    """torch: a Python call counter; JAX: a ``jax.debug.callback`` counter, which fires at run time
    inside the compiled scan / diffrax loop (the reported NFE comes from the loop's own count, or
    for the ODE from diffrax's step statistics: 6 · num_steps + 1 for Tsit5)."""
    exact = mixture(backend.name, "vp", GAUSSIAN)
    x1 = exact.sample(1.0, 64, seed=0)
    counted, count = backend.counter(exact)
    options = {"em": dict(steps=30), "pc": dict(steps=20, corrector_steps=2), "ode": dict(rtol=1e-5, atol=1e-5)}
    result = run(backend, method, counted, x1, **options[method])
    assert result.nfe == count() > 0
    if method == "ode" and backend.name == "jax":
        assert (result.nfe - 1) % 6 == 0


def test_ode_nfe_grows_with_tighter_tolerances(backend):
    exact = mixture(backend.name, "vp", GAUSSIAN)
    x1 = exact.sample(1.0, 256, seed=0)
    loose = run(backend, "ode", exact, x1, rtol=1e-3, atol=1e-3).nfe
    tight = run(backend, "ode", exact, x1, rtol=1e-7, atol=1e-7).nfe
    assert tight > loose > 0


def corrector_chain(forward, score, y, t, steps, snr, stream):
    """``steps`` Langevin corrector steps at the fixed time t with α = 1."""
    corrector = Corrector(snr, 1, 1.0)
    return forward.ops.fori(lambda i, y: langevin_correct(forward, score, y, t, stream.at(i), corrector, 0.0),
                            y, steps)


def test_langevin_corrector_relaxes_to_p_t_and_a_reversed_one_does_not(backend):
    """At fixed t the corrector is ULA on p_t = N(m, P) with ε = 2 snr² E‖z‖²/E‖s‖² ≈ 2 snr² n / tr P⁻¹
    (≈ 4e-3 at t = 0.3, snr = 0.05): started at 9× the covariance, after k = 2000 steps the error
    decays like (1 - ε/λ_max)^{2k} ≈ e^{-14}; ULA's stationary covariance is off by
    ε/(2λ) ≤ snr² n = 0.5 % ≪ the 2.2 % standard error of a variance at N = 4000."""
    exact = mixture(backend.name, "vp", GAUSSIAN)
    t, snr = 0.3, 0.05
    mean, cov = exact.moments(t)
    y0 = backend.asarray(mean + 3 * (exact.sample(t, N, seed=2) - mean))
    forward = backend.compile("vp")
    run_chain = forward.ops.jit(corrector_chain)
    y = run_chain(forward, exact, y0, t, 2000, snr, forward.ops.stream(5))
    assert gaussian_moment_pvalue(backend.to_numpy(y), mean, cov) > ALPHA
    wrong = run_chain(forward, exact.scaled(-1.0), y0, t, 200, snr, forward.ops.stream(5))
    assert gaussian_moment_pvalue(backend.to_numpy(wrong), mean, cov) < ALPHA


def test_the_prior_is_the_start_when_no_initial_state_is_given(backend):
    exact = mixture(backend.name, "vp", GAUSSIAN)
    result = backend.lib.sample_em(backend.compile("vp"), N, steps=300, score=exact, seed=5, dtype=backend.f64)
    # p_1 ≠ N(0, I) only through α_1² ≈ 4e-5 of the data: the samples still match p_tmin.
    assert accepts(backend.to_numpy(result.samples), exact.sample(T_MIN, N, seed=6))


@pytest.mark.parametrize("method", ["em", "ode"])
def test_mixture_with_the_exact_score_keeps_mode_weights_and_spreads(backend, method):
    """½ N((-2, 0), 0.09 I) + ½ N((2, 0), 0.09 I): a binomial test on the right mode's mass (½) and
    Gaussian moment tests on each mode (the modes' overlap at t_min is ~e^{-40}), Bonferroni."""
    exact = mixture(backend.name, "vp", TWO_MODES)
    x1 = exact.sample(1.0, N, seed=3)
    x = backend.to_numpy(run(backend, method, exact, x1, seed=1).samples)
    right = x[:, 0] > 0
    pvalues = [stats.binomtest(int(right.sum()), N, 0.5).pvalue]
    for (m, c), rows in zip(exact.component_moments(T_MIN), [~right, right]):
        pvalues.append(gaussian_moment_pvalue(x[rows], m, c))
    assert min(pvalues) * len(pvalues) > ALPHA, pvalues
    doubled = backend.to_numpy(run(backend, method, exact.scaled(2.0), x1, seed=1).samples)
    right = doubled[:, 0] > 0
    assert min(gaussian_moment_pvalue(doubled[rows], m, c)
               for (m, c), rows in zip(exact.component_moments(T_MIN), [~right, right])) * 3 < ALPHA


def whiten(exact, x, t):
    """Qᵀ (x - m_t) / √λ_t with S = Q diag(s) Qᵀ and λ_t = α_t² s + σ_t² (P_t = α_t² S + σ_t² I shares
    S's eigenbasis at every t): constant along probability-flow trajectories of Gaussian data."""
    (c00, c01, c11), = exact.covs
    s, q = np.linalg.eigh(np.array([[c00, c01], [c01, c11]]))
    a2, s2, _ = exact.coefficients(np.float64(t), np.exp)
    (m, _), = exact.component_moments(t)
    return ((x - m) @ q) / np.sqrt(a2 * s + s2)


def test_probability_flow_keeps_whitened_coordinates_constant(backend):
    exact = mixture(backend.name, "vp", GAUSSIAN)
    x1 = exact.sample(1.0, 64, seed=13)
    xe = backend.to_numpy(run(backend, "ode", exact, x1, rtol=1e-9, atol=1e-9).samples)
    np.testing.assert_allclose(whiten(exact, xe, T_MIN), whiten(exact, x1, 1.0), rtol=1e-5, atol=1e-5)
    bad = backend.to_numpy(run(backend, "ode", exact.scaled(2.0), x1, rtol=1e-9, atol=1e-9).samples)
    assert np.max(np.abs(whiten(exact, bad, T_MIN) - whiten(exact, x1, 1.0))) > 1e-2


def test_reverse_module_simulates_back_to_p_eps_and_a_halved_score_fails(backend):
    """``module.reverse()`` (the derived reverse SDE in s = 1 - t) with ``simulate``, dt = 1e-3."""
    exact = mixture(backend.name, "vp", GAUSSIAN)
    x1 = backend.asarray(exact.sample(1.0, N, seed=11))
    mean, cov = exact.moments(T_MIN)
    out = backend.compile("vp", score=exact).reverse().simulate(x1, [0.0, 1.0 - T_MIN], 1e-3, seed=12)
    assert gaussian_moment_pvalue(backend.to_numpy(out[-1]), mean, cov) > ALPHA
    bad = backend.compile("vp", score=exact.scaled(0.5)).reverse().simulate(x1, [0.0, 1.0 - T_MIN], 1e-3, seed=12)
    assert gaussian_moment_pvalue(backend.to_numpy(bad[-1]), mean, cov) < ALPHA


def test_prior_sample_and_log_prob(backend):
    module = backend.compile("vp", d=3)
    x = backend.to_numpy(module.prior_sample(20000, seed=0, dtype=backend.f64))
    assert x.shape == (20000, 3)
    assert gaussian_moment_pvalue(x, np.zeros(3), np.eye(3)) > ALPHA
    z = np.random.default_rng(1).normal(size=(10, 3))
    expected = stats.norm.logpdf(z).sum(-1)
    np.testing.assert_allclose(backend.to_numpy(module.prior_log_prob(backend.asarray(z))), expected, rtol=1e-12)


def test_bad_arguments_raise_value_error(backend):
    exact = mixture(backend.name, "vp", GAUSSIAN)
    module = backend.compile("vp", score=exact)
    x = backend.asarray(np.zeros((4, 2)))
    lib = backend.lib
    with pytest.raises(ValueError):
        lib.sample(module, 4, "nosuch", x_init=x)
    for method in ("em", "pc"):
        with pytest.raises(ValueError):
            lib.sample(module, 4, method, steps=0, x_init=x)
        with pytest.raises(ValueError):
            lib.sample(module, 4, method, steps=2.5, x_init=x)
    for method in ("em", "pc", "ode"):
        with pytest.raises(ValueError):
            lib.sample(module, 4, method, t_min=1.0, x_init=x)
        with pytest.raises(ValueError):
            lib.sample(module, 4, method, t_min=2.0, x_init=x)
    for snr in (0.0, -0.16):
        with pytest.raises(ValueError):
            lib.sample_pc(module, 4, steps=2, snr=snr, x_init=x)
    with pytest.raises(ValueError):
        lib.sample_pc(module, 4, steps=2, corrector_steps=-1, x_init=x)
    with pytest.raises(ValueError):
        lib.log_prob(module, x, t_min=1.0)
    with pytest.raises(ValueError):
        lib.ScoreModel(module).sample(4, method="nosuch")
    with pytest.raises(ValueError):  # no score network attached or passed
        lib.sample_em(module.with_score(None), 4, steps=2, x_init=x)


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_ode_denoise_is_the_posterior_mean_of_gaussian_data(backend, sde):
    """ODE noise removal: with the exact score of Gaussian data N(μ, S), the last step maps the
    flow's x at t_min to E[x_0 | x_t = x] = μ + α S P⁻¹ (x - α μ), P = α² S + σ² I (Gaussian
    conjugacy, written here from the kernel's α, σ), and adds one NFE."""
    exact = mixture(backend.name, sde, GAUSSIAN)
    x1 = exact.sample(1.0, 200, seed=1)
    t_min = 0.05
    plain = run(backend, "ode", exact, x1, sde=sde, t_min=t_min)
    denoised = run(backend, "ode", exact, x1, sde=sde, t_min=t_min, denoise=True)
    assert denoised.nfe == plain.nfe + 1
    a2, s2, a = exact.coefficients(np.float64(t_min), np.exp)
    (c00, c01, c11), mu = GAUSSIAN["covs"][0], np.asarray(GAUSSIAN["means"][0])
    S = np.array([[c00, c01], [c01, c11]])
    gain = a * S @ np.linalg.inv(a2 * S + s2 * np.eye(2))
    x = backend.to_numpy(plain.samples)
    expected = mu + (x - a * mu) @ gain.T
    np.testing.assert_allclose(backend.to_numpy(denoised.samples), expected, rtol=0, atol=1e-9)
    assert np.abs(expected - x).max() > 1e-4          # the step moves the samples: the test can fail
