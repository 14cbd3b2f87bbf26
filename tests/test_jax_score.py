"""Score-based pieces of the JAX backend without training: the VP SDE with the EXACT score of
Gaussian data, p_t = N(α_t μ, α_t² s² + σ_t²) per component, α_t = exp(-½ ∫₀ᵗ β), σ_t² = 1 - α_t².
The reverse SDE and the probability-flow ODE must carry p_T back to p_ε; the flow log-likelihood
must equal the exact Gaussian log-density; DSM with the exact conditional score is zero; planted
bugs (score ×2) are rejected."""
import pathlib

import numpy as np
import pytest
from scipy import stats

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
pytest.importorskip("diffrax")

import sdelang  # noqa: E402

pytestmark = pytest.mark.jax
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
ALPHA = 1e-3
B_MIN, B_MAX = 0.1, 20.0
MU = np.array([1.0, -0.5])
S2 = np.array([0.25, 0.04])  # data variances per component


@pytest.fixture(autouse=True, scope="module")
def float64(jax_float64):
    """Every test here runs in float64."""


def alpha(t):
    return jnp.exp(-0.5 * (B_MIN * t + 0.5 * (B_MAX - B_MIN) * t**2))


def marginal(t):
    """(mean, variance) of p_t per component, shape (2,) each (t a scalar)."""
    a = alpha(t)
    return a * MU, a**2 * S2 + 1 - a**2


def exact_score(y, t):
    t = jnp.asarray(t)
    t = t if t.ndim == 0 else t[..., None]
    a = alpha(t)
    return -(y - a * MU) / (a**2 * S2 + 1 - a**2)


def vp_module(score):
    return sdelang.load(EXAMPLES / "vp.sde", d=2).compile("jax", score=score)


def moment_pvalues(x, mean, var):
    """z-tests on the means and χ² tests on the variances of each component."""
    N = x.shape[0]
    out = []
    for k in range(x.shape[1]):
        z = (x[:, k].mean() - mean[k]) / np.sqrt(var[k] / N)
        chi2 = np.sum((x[:, k] - mean[k]) ** 2) / var[k]
        out += [2 * stats.norm.sf(abs(z)), 2 * min(stats.chi2.cdf(chi2, N), stats.chi2.sf(chi2, N))]
    return out


def reverse_samples(score, N=4000, steps=1000, eps=1e-3, seed=0):
    rev = vp_module(score).reverse()
    mean_T, var_T = marginal(1.0)
    x_T = mean_T + jnp.sqrt(var_T) * jax.random.normal(jax.random.PRNGKey(seed), (N, 2))
    span = 1.0 - eps
    xs = rev.simulate(x_T, [0.0, span], span / steps, seed=seed + 1)
    return np.asarray(xs[-1])


def test_reverse_sde_with_exact_score_recovers_the_data_law():
    mean, var = marginal(1e-3)
    p = moment_pvalues(reverse_samples(exact_score), np.asarray(mean), np.asarray(var))
    assert min(p) > ALPHA / len(p), p


def test_reverse_sde_with_doubled_score_is_rejected():
    mean, var = marginal(1e-3)
    p = moment_pvalues(reverse_samples(lambda y, t: 2 * exact_score(y, t)), np.asarray(mean), np.asarray(var))
    assert min(p) < ALPHA / len(p)


def test_probability_flow_keeps_z_scores_constant():
    """For Gaussian data z = (x - m_t)/√v_t is constant along flow trajectories."""
    import diffrax

    flow = vp_module(exact_score).probability_flow()
    assert not flow.is_sde
    x1 = jax.random.normal(jax.random.PRNGKey(3), (64, 2))
    sol = diffrax.diffeqsolve(flow.terms(), diffrax.Tsit5(), 1.0, 1e-3, -1e-2, x1,
                              stepsize_controller=diffrax.PIDController(rtol=1e-9, atol=1e-9))
    m1, v1 = marginal(1.0)
    m0, v0 = marginal(1e-3)
    np.testing.assert_allclose((sol.ys[-1] - m0) / jnp.sqrt(v0), (x1 - m1) / jnp.sqrt(v1), rtol=1e-6, atol=1e-7)
    # the Euler `simulate` of the flow in forward time is deterministic (seed-free)
    xs = flow.simulate(x1, [0.0, 0.5], 0.01, seed=0)
    np.testing.assert_array_equal(np.asarray(xs), np.asarray(flow.simulate(x1, [0.0, 0.5], 0.01, seed=9)))


def exact_prior_module(mu, s2):
    """VP whose declared prior is the exact p_1 = N(α_1 μ, α_1² s² + 1 - α_1²) of data N(μ, s²)."""
    a1 = float(alpha(1.0))
    loc, scale = a1 * mu, float(np.sqrt(a1**2 * s2 + 1 - a1**2))
    text = EXAMPLES.joinpath("vp.sde").read_text().replace("Normal(0, 1)", f"Normal({loc!r}, {scale!r})")
    assert f"Normal({loc!r}" in text
    return sdelang.parse(text, beta_min=B_MIN, beta_max=B_MAX)


@pytest.mark.parametrize("exact", [True, False])
def test_log_prob_equals_exact_gaussian_density(exact):
    mu, s2 = 0.8, 0.3

    def score(y, t):
        t = jnp.asarray(t)
        a = alpha(t if t.ndim == 0 else t[..., None])
        return -(y - a * mu) / (a**2 * s2 + 1 - a**2)

    mod = exact_prior_module(mu, s2).compile("jax", score=score)
    x = jnp.asarray(np.random.default_rng(4).normal(mu, np.sqrt(s2), size=(16, 2)))
    t_min = 1e-5
    # Hutchinson with one Rademacher vector is exact here: the flow's Jacobian is diagonal
    lp = mod.log_prob(x, exact=exact, rtol=1e-8, atol=1e-8, t_min=t_min, seed=3)
    a = alpha(t_min)
    v = a**2 * s2 + 1 - a**2
    expected = jnp.sum(-0.5 * (x - a * mu) ** 2 / v - 0.5 * jnp.log(2 * jnp.pi * v), axis=-1)
    np.testing.assert_allclose(lp, expected, atol=1e-5)


def test_log_prob_rejects_a_wrong_flow_factor():
    """Planted bug: a score ×2 (i.e. the flow's ½ D ∇log p replaced by D ∇log p) is off by ≫ 1e-5."""
    mu, s2 = 0.8, 0.3

    def doubled(y, t):
        a = alpha(jnp.asarray(t))
        return -2 * (y - a * mu) / (a**2 * s2 + 1 - a**2)

    mod = exact_prior_module(mu, s2).compile("jax", score=doubled)
    x = jnp.asarray([[0.5, 1.1]])
    a = alpha(1e-5)
    v = a**2 * s2 + 1 - a**2
    expected = jnp.sum(-0.5 * (x - a * mu) ** 2 / v - 0.5 * jnp.log(2 * jnp.pi * v), axis=-1)
    assert abs(float(mod.log_prob(x, rtol=1e-8, atol=1e-8)[0] - expected[0])) > 1e-2


def test_dsm_loss_vanishes_for_the_conditional_score_of_a_point_mass():
    """Data = one point x0: p_t = N(α_t x0, σ_t²) and σ_t s + ε = 0 exactly; score ×2 gives E||ε||²."""
    x0 = jnp.tile(jnp.asarray(MU), (4096, 1))

    def point_score(y, t):
        a = alpha(t)[..., None]
        return -(y - a * jnp.asarray(MU)) / (1 - a**2)

    assert float(vp_module(point_score).dsm_loss(x0, key=jax.random.PRNGKey(0))) < 1e-18
    assert float(vp_module(point_score).dsm_loss(x0, weighting="likelihood", seed=1)) < 1e-12
    wrong = float(vp_module(lambda y, t: 2 * point_score(y, t)).dsm_loss(x0, seed=2))
    # E||σ(2s) + ε||² = E||ε||² = d = 2, with sampling sd √(2·2/4096)
    assert abs(wrong - 2.0) < 4 * np.sqrt(4 / 4096)


def test_perturbation_kernel_matches_the_closed_form():
    mod = vp_module(exact_score)
    x0 = jnp.asarray(np.random.default_rng(5).normal(size=(10, 2)))
    t = jnp.linspace(0.01, 1.0, 10)
    mean, std = mod.perturbation_kernel(x0, t)
    a = alpha(t)[:, None]
    np.testing.assert_allclose(mean, a * x0, rtol=1e-10)
    np.testing.assert_allclose(std, jnp.broadcast_to(jnp.sqrt(1 - a**2), (10, 2)), rtol=1e-10)


def test_prior_sample_and_log_prob():
    mod = vp_module(exact_score)
    x = mod.prior_sample(20000, seed=0)
    assert x.shape == (20000, 2)
    p = moment_pvalues(np.asarray(x), np.zeros(2), np.ones(2))
    assert min(p) > ALPHA / len(p)
    np.testing.assert_allclose(mod.prior_log_prob(jnp.zeros((1, 2))), [-np.log(2 * np.pi)], rtol=1e-12)


def test_default_mlp_score_network_plugs_in():
    from sdelang_jax import ScoreMLP

    net = ScoreMLP(2, key=jax.random.PRNGKey(0), width=16)
    mod = vp_module(net)
    x0 = jax.random.normal(jax.random.PRNGKey(1), (32, 2))
    import equinox as eqx

    grads = eqx.filter_grad(lambda m: m.dsm_loss(x0, seed=0))(mod)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads.score))
    xs = mod.reverse().simulate(x0, [0.0, 0.5], 0.05)
    assert xs.shape == (2, 32, 2) and bool(jnp.all(jnp.isfinite(xs)))


def test_coupled_kernel_dsm_vanishes_for_the_exact_conditional_score():
    """Critically damped Langevin: (mean, cov) kernel; with s = -Σ_t⁻¹(y - m_t) both weightings give
    0, and a score ×2 gives E||ε||² = 2 under the σ² weighting."""
    cld = sdelang.load(EXAMPLES / "cld.sde")
    x0 = jnp.ones((2048, 2))

    def conditional(y, t):
        holder = cld.compile("jax")
        m, cov = holder.perturbation_kernel(jnp.ones_like(y), t)
        return -jnp.linalg.solve(cov, (y - m)[..., None])[..., 0]

    mod = cld.compile("jax", score=conditional)
    assert mod.has_kernel and not mod.kernel_is_diagonal
    assert float(mod.dsm_loss(x0, seed=0)) < 1e-18
    assert float(mod.dsm_loss(x0, weighting="likelihood", seed=0)) < 1e-12
    wrong = float(cld.compile("jax", score=lambda y, t: 2 * conditional(y, t)).dsm_loss(x0, seed=1))
    assert abs(wrong - 2.0) < 4 * np.sqrt(4 / 2048)
