"""torch and JAX on the same inputs: the same defaults (a drifted default fails here), the same
samples within Monte-Carlo error (EM, PC) or solver error (the deterministic ODE), and the same
log-likelihoods, with the same exact score."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

import sdelang.score as score_layer
from sdelang.score.time_features import fourier_frequencies

from score_backends import ALPHA, GAUSSIAN, MIXTURE, T_MIN, both, mixture, two_sample_moment_pvalue  # noqa: F401

pytestmark = [pytest.mark.torch, pytest.mark.jax]


def defaults(fn, *names):
    parameters = inspect.signature(fn).parameters
    return {name: parameters[name].default for name in names}


def test_both_backends_share_the_score_layer_and_its_defaults(both):
    torch_b, jax_b = both
    for name in ("sample", "sample_em", "sample_pc", "sample_ode", "dsm_loss", "ssm_loss", "log_prob", "ScoreTrainer"):
        assert getattr(torch_b.lib, name) is getattr(jax_b.lib, name) is getattr(score_layer, name), name
    assert torch_b.lib.ScoreModel.__init__ is jax_b.lib.ScoreModel.__init__
    assert defaults(score_layer.sample_em, "steps", "t_min", "denoise") == {"steps": 500, "t_min": T_MIN, "denoise": True}
    assert defaults(score_layer.sample_pc, "snr", "corrector_steps", "corrector_alpha", "t_min")["t_min"] == T_MIN
    assert defaults(score_layer.dsm_loss, "t_min")["t_min"] == defaults(score_layer.ssm_loss, "t_min")["t_min"] == T_MIN
    assert defaults(score_layer.log_prob, "t_min")["t_min"] == T_MIN
    # the compiled modules' own methods
    tm, jm = torch_b.compile("vp"), jax_b.compile("vp")
    for method, names in (("dsm_loss", ("t_min", "weighting", "seed")), ("log_prob", ("exact", "rtol", "atol", "t_min"))):
        assert defaults(getattr(tm, method), *names) == defaults(getattr(jm, method), *names), method
    assert defaults(tm.dsm_loss, "t_min")["t_min"] == defaults(tm.log_prob, "t_min")["t_min"] == T_MIN
    # the default networks: same widths and the same time features πk, k = 1..8
    names = ("hidden", "depth", "frequencies")
    assert defaults(torch_b.lib.ScoreMLP.__init__, *names) == defaults(jax_b.lib.ScoreMLP.__init__, *names)
    expected = [np.pi * k for k in range(1, 9)]
    np.testing.assert_allclose(fourier_frequencies(), expected, rtol=1e-15)
    np.testing.assert_allclose(torch_b.mlp(2).freqs.numpy(), expected, rtol=1e-7)
    np.testing.assert_allclose(np.asarray(jax_b.mlp(2).frequencies), expected, rtol=1e-15)
    assert torch_b.ops.default_dtype == torch_b.f32 and jax_b.ops.default_dtype == jax_b.f32


def test_the_default_nets_tell_the_prior_time_from_the_data_time(both):
    """t1 = 1 and t0 = 0 must not look alike to the network (time features of period 1 made the
    score at t1, every sampler's first evaluation, the score at t0)."""
    for B in both:
        net = B.mlp(2, hidden=32, depth=2)
        x = B.asarray(np.random.default_rng(0).standard_normal((64, 2)), B.f32)
        gap = np.abs(B.to_numpy(net(x, 1.0)) - B.to_numpy(net(x, 0.0))).max()
        scale = np.abs(B.to_numpy(net(x, 0.0))).max()
        assert gap > 1e-2 * scale, (B.name, gap, scale)


def test_default_t_min_is_the_one_used(both):
    """Without t_min the samplers and DSM give bit for bit what t_min = 1e-3 gives, on each backend."""
    for B in both:
        exact = mixture(B.name, "vp", GAUSSIAN)
        module = B.compile("vp")
        x = B.asarray(exact.sample(1.0, 16, seed=0))
        plain = B.lib.sample_em(module, 16, steps=5, x_init=x, score=exact, dtype=B.f64).samples
        explicit = B.lib.sample_em(module, 16, steps=5, x_init=x, score=exact, dtype=B.f64, t_min=T_MIN).samples
        np.testing.assert_array_equal(B.to_numpy(plain), B.to_numpy(explicit))
        other = B.lib.sample_em(module, 16, steps=5, x_init=x, score=exact, dtype=B.f64, t_min=2e-3).samples
        assert not np.array_equal(B.to_numpy(plain), B.to_numpy(other))
        loss = B.to_numpy(B.lib.dsm_loss(module, x, score=exact))
        np.testing.assert_array_equal(loss, B.to_numpy(B.lib.dsm_loss(module, x, score=exact, t_min=T_MIN)))


@pytest.mark.parametrize("method", ["em", "pc"])
def test_stochastic_samplers_agree_between_backends(both, method):
    """Same x_init and exact score, independent noise: two-sample z-tests on means and second
    moments (Bonferroni, α = 1e-3) accept; the doubled score on one side is rejected."""
    n = 4000
    results = {}
    for B in both:
        exact = mixture(B.name, "vp", MIXTURE)
        x1 = B.asarray(exact.sample(1.0, n, seed=21))
        options = dict(steps=500) if method == "em" else dict(steps=250)
        for factor in (1.0, 2.0):
            out = B.lib.sample(B.compile("vp"), n, method, x_init=x1, seed=3, score=exact.scaled(factor),
                               dtype=B.f64, **options)
            results[B.name, factor] = B.to_numpy(out.samples)
    assert two_sample_moment_pvalue(results["torch", 1.0], results["jax", 1.0]) > ALPHA
    assert two_sample_moment_pvalue(results["torch", 1.0], results["jax", 2.0]) < ALPHA


def test_probability_flow_samples_and_log_prob_agree_between_backends(both):
    """The ODE is deterministic: the same x_init lands on the same points (dopri5 vs Tsit5 at
    rtol = atol = 1e-7, agreement to 1e-4), and log_prob of the same points agrees to 1e-4."""
    n = 256
    out, lp = {}, {}
    for B in both:
        exact = mixture(B.name, "vp", MIXTURE)
        x1 = B.asarray(exact.sample(1.0, n, seed=8))
        out[B.name] = B.to_numpy(B.lib.sample_ode(B.compile("vp"), n, x_init=x1, score=exact, rtol=1e-7, atol=1e-7,
                                                  dtype=B.f64).samples)
        x = B.asarray(exact.sample(T_MIN, 32, seed=9))
        lp[B.name] = B.to_numpy(B.lib.log_prob(B.compile("vp", score=exact), x, rtol=1e-7, atol=1e-7))
    np.testing.assert_allclose(out["torch"], out["jax"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(lp["torch"], lp["jax"], rtol=0, atol=1e-4)
