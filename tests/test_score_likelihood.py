"""Log-likelihoods through the probability-flow ODE (sdelang.score.likelihood, ``ScoreModel.log_prob``
and ``bits_per_dim``) on both backends, against the exact density of Gaussian-mixture data:
log p_{t_min}(x) of p_t = Σ_k w_k N(α_t m_k, α_t² S_k + σ_t² I) with the exact p_1 as the prior
(VERIFICATION.md: within 1e-5 at tight tolerances). Planted bugs: a doubled score in the flow and a
hand-written flow with factor 1 instead of ½ must be off by ≫ the tolerance."""
from __future__ import annotations

import math

import numpy as np
import pytest

import sdelang

from score_backends import DIAGONAL, GAUSSIAN, MIXTURE, T_MIN, backend, mixture  # noqa: F401

TIGHT = dict(rtol=1e-8, atol=1e-8)
FLOW_BY_HAND = """model VPFlowByHand {
    time t in [0, 1]
    state x[d]
    param d: int = 2
    param beta_min = 0.1 in (0, inf)
    param beta_max = 20.0 in (0, inf)
    param factor = 0.5
    net score(x, t)
    let beta(t) = beta_min + t * (beta_max - beta_min)
    dx = (-1/2 * beta(t) * x - factor * beta(t) * score(x, t)) dt
    prior x ~ Normal(0, 1)
}"""


def numpy_of(backend, x):
    return backend.to_numpy(x)


@pytest.mark.parametrize("sde", ["vp", "ve"])
def test_flow_log_prob_and_bits_per_dim_match_the_closed_form(backend, sde):
    B = backend
    exact = mixture(B.name, sde, MIXTURE)
    x = exact.sample(T_MIN, 32, seed=4)
    expected = B.to_numpy(exact.log_prob(B.asarray(x), T_MIN))
    prior = lambda z: exact.log_prob(z, 1.0)  # noqa: E731
    model = B.lib.ScoreModel(B.compile(sde), net=exact, dtype=B.f64)
    assert model.t_min == T_MIN  # the default
    got = B.to_numpy(model.log_prob(x, prior=prior, **TIGHT))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)
    bpd = B.to_numpy(model.bits_per_dim(x, prior=prior, **TIGHT))
    np.testing.assert_allclose(bpd, -got / (2 * math.log(2)), rtol=1e-12)
    doubled = B.lib.ScoreModel(B.compile(sde), net=exact.scaled(2.0), dtype=B.f64)
    assert np.max(np.abs(B.to_numpy(doubled.log_prob(x, prior=prior, **TIGHT)) - expected)) > 1e-2


def test_the_spec_prior_is_the_default_and_only_misses_alpha_1(backend):
    """With VP's declared N(0, I) prior the only error is p_1 ≠ N(0, I): α_1² ≈ 4e-5 of the data."""
    B = backend
    exact = mixture(B.name, "vp", GAUSSIAN)
    x = B.asarray(exact.sample(T_MIN, 16, seed=21))
    approx = B.to_numpy(B.lib.log_prob(B.compile("vp", score=exact), x, rtol=1e-6, atol=1e-6))
    assert np.max(np.abs(approx - B.to_numpy(exact.log_prob(x, T_MIN)))) < 0.05


def test_hutchinson_log_prob_is_exact_for_a_diagonal_jacobian_and_unbiased_otherwise(backend):
    """Independent components: the flow's Jacobian is diagonal, so εᵀ J ε = tr J for every Rademacher
    ε and Hutchinson equals the exact trace. Correlated mixture: ε is drawn per row and fixed along
    the solve, so 256 copies of one point give 256 independent unbiased estimates: their mean is
    within 4 standard errors of the exact log-density."""
    B = backend
    diagonal = mixture(B.name, "vp", DIAGONAL)
    x = diagonal.sample(T_MIN, 16, seed=3)
    module = B.compile("vp", score=diagonal)
    prior = lambda z: diagonal.log_prob(z, 1.0)  # noqa: E731
    exact = B.to_numpy(B.lib.log_prob(module, B.asarray(x), prior=prior, rtol=1e-7, atol=1e-7))
    hutch = B.to_numpy(B.lib.log_prob(module, B.asarray(x), exact=False, seed=4, prior=prior, rtol=1e-7, atol=1e-7))
    np.testing.assert_allclose(hutch, exact, rtol=0, atol=1e-6)

    mix = mixture(B.name, "vp", MIXTURE)
    point = B.asarray(np.tile([0.2, 0.1], (256, 1)))
    module = B.compile("vp", score=mix)
    prior = lambda z: mix.log_prob(z, 1.0)  # noqa: E731
    estimates = B.to_numpy(B.lib.log_prob(module, point, exact=False, seed=5, prior=prior, rtol=1e-6, atol=1e-6))
    truth = float(B.to_numpy(mix.log_prob(point[:1], T_MIN))[0])
    se = estimates.std(ddof=1) / math.sqrt(len(estimates))
    assert estimates.std() > 1e-3 and abs(estimates.mean() - truth) < 4 * se


def test_a_hand_written_flow_matches_and_its_planted_factor_fails(backend):
    """dx/dt = -½β x - factor · β · s(x, t): factor ½ is VP's probability flow (its log_prob equals
    the exact density), factor 1 (the planted bug) is off by ≫ 1e-5."""
    B = backend
    exact = mixture(B.name, "vp", GAUSSIAN)
    x = B.asarray(exact.sample(T_MIN, 16, seed=21))
    expected = B.to_numpy(exact.log_prob(x, T_MIN))
    prior = lambda z: exact.log_prob(z, 1.0)  # noqa: E731
    for factor, close in ((0.5, True), (1.0, False)):
        flow = sdelang.parse(FLOW_BY_HAND, factor=factor).compile(B.name, score=exact)
        assert not flow.is_sde
        got = B.to_numpy(B.lib.log_prob(flow, x, prior=prior, **TIGHT))
        error = np.max(np.abs(got - expected))
        assert (error < 1e-5) if close else (error > 1e-2), (factor, error)
