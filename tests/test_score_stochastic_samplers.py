"""Stochastic few-step samplers (ancestral = DDPM/SMLD posterior sampling = SDE-DPM-Solver++1,
SDE-DPM-Solver++(2M), EDM's Heun with churn) leave Gaussian data's exact-score marginals correct.

Data N(m, S) in 2-D, diffused by VP or VE, has p_t = N(α_t m, α_t² S + σ_t² I) in closed form
(score_backends.Mixture, independent of sdelang's kernel). From exact draws of p_{t1}, 20 000
samples taken with the exact score must match p_{t0 + t_min} in mean and second moments (z-tests,
α = 1e-3 after Bonferroni, VERIFICATION.md). The first-order ancestral step's plug-in x̂_0
shrinks the variance by O(h) (-4 % of it at 200 steps, which the test sees): it takes 1 000 steps;
the second-order samplers 200. The same test with the score halved (a planted
missing ½) must reject.
"""
from __future__ import annotations

import pytest

import score_backends as sb
from score_backends import ALPHA, T_MIN, backend  # noqa: F401  (fixture)

N = 20_000
SAMPLERS = [("ancestral", 1, {"steps": 1000}), ("ancestral", 2, {"steps": 200}),
            ("heun", 2, {"steps": 200, "s_churn": 40.0})]


def moments_pvalue(B, sde, method, order, options, factor=1.0):
    mix = sb.mixture(B.name, sde, sb.GAUSSIAN)
    x_init = B.asarray(mix.sample(1.0, N, seed=11))
    result = B.lib.sample(B.compile(sde), N, method, order=order, x_init=x_init,
                          score=mix.scaled(factor, tag=int(factor * 100)), seed=5, dtype=B.f64, **options)
    mean, cov = mix.moments(T_MIN)
    return sb.gaussian_moment_pvalue(B.to_numpy(result.samples), mean, cov)


@pytest.mark.slow
@pytest.mark.parametrize("sde", ["vp", "ve"])
@pytest.mark.parametrize("method,order,options", SAMPLERS)
def test_stochastic_samplers_keep_the_exact_marginal(backend, sde, method, order, options):
    assert moments_pvalue(backend, sde, method, order, options) > ALPHA


@pytest.mark.parametrize("method,order,options", SAMPLERS)
def test_a_halved_score_is_caught(backend, method, order, options):
    assert moments_pvalue(backend, "vp", method, order, options, factor=0.5) < ALPHA
