"""JAX ``simulate``: Euler–Maruyama tested against the discretised chain's own law (VERIFICATION.md),
fixed seeds, α = 1e-3 per assertion with Bonferroni over the statistics of a test; every
statistical test is paired with a planted bug that it rejects."""
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


@pytest.fixture(autouse=True, scope="module")
def float64(jax_float64):
    """Every test here runs in float64."""


def ou_chain_moments(x0, theta, mu, sigma, h, n):
    """EM on dx = θ(μ - x)dt + σ dW from a point x0: mean μ + (x0 - μ)(1 - θh)^n and variance
    v_n = v∞ (1 - (1 - θh)^{2n}), v∞ = (σ²/2θ)/(1 - θh/2)."""
    a = 1 - theta * h
    v_inf = (sigma**2 / (2 * theta)) / (1 - theta * h / 2)
    return mu + (x0 - mu) * a**n, v_inf * (1 - a ** (2 * n))


def gaussian_pvalues(samples, mean, var):
    """Two-sided p-values: z-test of the sample mean, χ²_N test of Σ (x - mean)² / var."""
    N = samples.size
    z = (samples.mean() - mean) / np.sqrt(var / N)
    chi2 = np.sum((samples - mean) ** 2) / var
    p_chi2 = 2 * min(stats.chi2.cdf(chi2, N), stats.chi2.sf(chi2, N))
    return 2 * stats.norm.sf(abs(z)), p_chi2


def ou_pvalues(module, theta, mu, sigma, *, h=0.05, N=20000, seed=0):
    x0 = 1.5
    ts = np.array([0.0, 0.5, 2.0])
    ys = np.asarray(module.simulate(jnp.full((N, 1), x0), ts, h, seed=seed))
    out = []
    for i, t in enumerate(ts[1:], start=1):
        mean, var = ou_chain_moments(x0, theta, mu, sigma, h, round(t / h))
        out += gaussian_pvalues(ys[i, :, 0], mean, var)
    return out


def test_ou_follows_the_euler_chain_law():
    ou = sdelang.load(EXAMPLES / "ou.sde", theta=1.3, mu=0.4, sigma=0.8)
    p = ou_pvalues(ou.compile("jax"), 1.3, 0.4, 0.8)
    assert min(p) > ALPHA / len(p), p


def test_ou_planted_half_drift_is_rejected():
    ou = sdelang.load(EXAMPLES / "ou.sde", theta=1.3, mu=0.4, sigma=0.8)
    wrong = ou.replace(drift=ou.drift / 2).compile("jax")
    p = ou_pvalues(wrong, 1.3, 0.4, 0.8)
    assert min(p) < ALPHA / len(p)


def gbm_moments(S0, drift, sigma, h, n):
    """EM on dS = a S dt + σ S dW: E S_n = S0 (1 + a h)^n exactly, E S_n² = S0² ((1 + a h)² + σ² h)^n."""
    m = S0 * (1 + drift * h) ** n
    second = S0**2 * ((1 + drift * h) ** 2 + sigma**2 * h) ** n
    return m, second - m**2


def test_gbm_euler_mean_is_exact():
    mod = sdelang.load(EXAMPLES / "gbm.sde", mu=1.0, sigma=0.5).compile("jax")
    h, N = 0.1, 20000
    ys = np.asarray(mod.simulate(jnp.ones((N, 1)), [0.0, 1.0], h, seed=1))[-1, :, 0]
    mean, var = gbm_moments(1.0, 1.0, 0.5, h, 10)
    z = (ys.mean() - mean) / np.sqrt(var / N)
    assert abs(z) < stats.norm.isf(ALPHA / 2), z
    # the exact-SDE mean e (not the chain's) is far away at h = 0.1: the test has power
    assert abs((ys.mean() - np.e) / np.sqrt(var / N)) > stats.norm.isf(ALPHA / 2)


def test_stratonovich_model_steps_with_its_ito_drift():
    """dS = S dt + 0.5 S ∘ dW: EM on the Itô drift 1.125 S has mean (1 + 1.125 h)^n; an Itô
    reading of the same text ((1 + h)^n) is rejected."""
    mod = sdelang.load(EXAMPLES / "stratonovich_gbm.sde").compile("jax")
    assert mod.calculus == "stratonovich"
    h, N = 0.05, 20000
    ys = np.asarray(mod.simulate(jnp.ones((N, 1)), [0.0, 1.0], h, seed=2))[-1, :, 0]
    mean, var = gbm_moments(1.0, 1.125, 0.5, h, 20)
    z = (ys.mean() - mean) / np.sqrt(var / N)
    assert abs(z) < stats.norm.isf(ALPHA / 2), z
    ito_mean, ito_var = gbm_moments(1.0, 1.0, 0.5, h, 20)
    assert abs((ys.mean() - ito_mean) / np.sqrt(ito_var / N)) > stats.norm.isf(ALPHA / 2)


def test_elementwise_vp_simulate_variance_law():
    """VP with constant β (β_min = β_max = b) is OU with θ = b/2, σ² = b per component."""
    vp = sdelang.load(EXAMPLES / "vp.sde", d=3, beta_min=2.0, beta_max=2.0).compile("jax")
    h, N = 0.05, 20000
    ys = np.asarray(vp.simulate(jnp.zeros((N, 3)), [0.0, 1.0], h, seed=3))[-1]
    mean, var = ou_chain_moments(0.0, 1.0, 0.0, np.sqrt(2.0), h, 20)
    p = [pv for k in range(3) for pv in gaussian_pvalues(ys[:, k], mean, var)]
    assert min(p) > ALPHA / len(p), p
    assert abs(np.corrcoef(ys.T)[0, 1]) < 4 / np.sqrt(N)  # independent components


# ----------------------------------------------------------------------------- the schedule
DECAY = "model Decay {\n state x\n param a = 1.0\n dx = -a * x dt\n}\n"


def test_euler_schedule_with_uneven_times_is_exact():
    mod = sdelang.parse(DECAY, a=1.5).compile("jax")
    assert not mod.is_sde
    ts = np.array([0.0, 0.1, 0.35, 1.0])
    ys = np.asarray(mod.simulate(jnp.ones((2, 1)), ts, 0.1))[:, 0, 0]
    expected = [1.0]
    for gap in np.diff(ts):
        k = int(np.ceil(gap / 0.1 - 1e-9))
        expected.append(expected[-1] * (1 - 1.5 * gap / k) ** k)
    np.testing.assert_allclose(ys, expected, rtol=1e-12)


def test_linspace_times_gain_no_sliver_step():
    mod = sdelang.parse(DECAY).compile("jax")
    ts = np.linspace(0.0, 1.0, 11)
    ys = np.asarray(mod.simulate(jnp.ones((1, 1)), ts, 0.01))[:, 0, 0]
    np.testing.assert_allclose(ys, 0.99 ** (10 * np.arange(11)), rtol=1e-12)


NOISY_NET = "model Noisy {\n state x\n net f(x, t)\n dx = f(x, t) dt + dW\n}\n"


def test_seeds_reproduce_and_new_values_do_not_recompile():
    traces = []

    def f(y, t):
        traces.append(1)
        return -y

    mod = sdelang.parse(NOISY_NET).compile("jax", f=f)
    x0 = jnp.zeros((64, 1))
    a = mod.simulate(x0, [0.0, 0.5, 1.0], 0.01, seed=0)
    count = len(traces)
    b = mod.simulate(x0, [0.0, 0.5, 1.0], 0.01, seed=0)
    c = mod.simulate(x0, [0.0, 0.5, 1.0], 0.01, seed=1)
    d = mod.simulate(x0, [0.2, 0.7, 1.2], 0.01, seed=jax.random.PRNGKey(5))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a[-1]), np.asarray(c[-1]))
    assert d.shape == (3, 64, 1)
    assert len(traces) == count  # same shapes: one compiled program served every call


def test_float32_stays_float32():
    jax.config.update("jax_enable_x64", False)
    try:
        mod = sdelang.load(EXAMPLES / "heston.sde").compile("jax")
        ys = mod.simulate(jnp.tile(jnp.array([1.0, 0.04], jnp.float32), (8, 1)), [0.0, 0.1], 0.01)
        assert ys.dtype == jnp.float32 and ys.shape == (2, 8, 2)
    finally:
        jax.config.update("jax_enable_x64", True)
