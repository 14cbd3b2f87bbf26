"""torch and JAX backends agree: drift and diffusion of every example (and of its reverse-time and
probability-flow models) at random float64 states and times to 1e-6 relative, with every network
replaced by the same deterministic function in both frameworks; simulated OU/GBM moments agree
within their statistical error (two-sample tests at α = 1e-3)."""
import pathlib

import numpy as np
import pytest
from scipy import stats

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")
pytest.importorskip("diffrax")
pytest.importorskip("torchsde")

import sdelang  # noqa: E402

pytestmark = [pytest.mark.jax, pytest.mark.torch]
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
SPECS = sorted(p.name for p in EXAMPLES.glob("*.sde"))
RTOL = 1e-6


@pytest.fixture(autouse=True, scope="module")
def float64(jax_float64):
    """Every test here runs in float64."""


def jax_net(y, t):
    """sin(y)(1 + t) - 0.3 y + 0.1 Σ y (a deterministic stand-in for a learned network)."""
    t = jnp.asarray(t)
    t = t if t.ndim == 0 else t[..., None]
    return jnp.sin(y) * (1 + t) - 0.3 * y + 0.1 * jnp.sum(y, axis=-1, keepdims=True)


def torch_net(y, t):
    t = torch.as_tensor(t, dtype=y.dtype)
    t = t if t.ndim == 0 else t[..., None]
    return torch.sin(y) * (1 + t) - 0.3 * y + 0.1 * torch.sum(y, dim=-1, keepdim=True)


def variants(model):
    """The model and, where derivable, its reverse-time and probability-flow models."""
    out = [("forward", model)]
    if not model.is_ode:
        out.append(("reverse", model.reverse()))
        out.append(("flow", model.probability_flow()))
    return out


def net_names(model):
    return {net.name for net in model.nets}


def random_states(model, size, seed):
    rng = np.random.default_rng(seed)
    n = 3 if model.elementwise else model.n_states
    y = rng.uniform(0.05, 1.5, size=(size, n))  # positive: sqrt(v), sqrt(r) stay real
    t0, t1 = float(model.t0), float(model.t1)
    t = rng.uniform(t0 + 1e-3 * (t1 - t0), t1, size=size)
    return y, t


def compile_both(model):
    nets = net_names(model)
    dims = {"d": 3} if model.elementwise and "d" in model.params else {}
    m = model.with_params(**dims) if dims else model
    jmod = m.compile("jax", **{k: jax_net for k in nets})
    tmod = m.compile("torch", **{k: torch_net for k in nets})
    return jmod, tmod


@pytest.mark.parametrize("spec", SPECS)
def test_drift_and_diffusion_agree(spec):
    base = sdelang.load(EXAMPLES / spec)
    for label, model in variants(base):
        jmod, tmod = compile_both(model)
        y, t = random_states(model, 50, seed=len(spec))
        yt, tt = torch.tensor(y, dtype=torch.float64), torch.tensor(t, dtype=torch.float64)
        with torch.no_grad():
            for j_time, t_time in ((t, tt), (float(t[0]), float(t[0]))):
                jf = np.asarray(jmod.drift_fn(j_time, jnp.asarray(y)))
                tf = tmod.drift_fn(t_time, yt).numpy()
                np.testing.assert_allclose(jf, tf, rtol=RTOL, atol=1e-12, err_msg=f"{spec} {label} drift")
                jg = np.asarray(jmod.diffusion_matrix(j_time, jnp.asarray(y)))
                tg = tmod.diffusion_matrix(t_time, yt).numpy()
                assert jg.shape == tg.shape, (spec, label, jg.shape, tg.shape)
                np.testing.assert_allclose(jg, tg, rtol=RTOL, atol=1e-12, err_msg=f"{spec} {label} diffusion")


def test_a_planted_difference_is_detected():
    model = sdelang.load(EXAMPLES / "heston.sde")
    jmod = model.compile("jax")
    tmod = model.replace(diffusion=model.diffusion.subs(model.params["rho"], -model.params["rho"])).compile("torch")
    y, t = random_states(model, 20, seed=0)
    jg = np.asarray(jmod.diffusion_matrix(jnp.asarray(t), jnp.asarray(y)))
    with torch.no_grad():
        tg = tmod.diffusion_matrix(torch.tensor(t), torch.tensor(y)).numpy()
    assert not np.allclose(jg, tg, rtol=RTOL)


def two_sample_pvalues(a, b):
    """z-tests for equal means and equal variances (Var(s²) ≈ 2σ⁴/N for near-Gaussian samples)."""
    na, nb = a.size, b.size
    z_mean = (a.mean() - b.mean()) / np.sqrt(a.var() / na + b.var() / nb)
    # a robust (kurtosis-aware) standard error of each sample variance: sd of (x - x̄)² / √N
    se_var = np.sqrt(((a - a.mean()) ** 2).var() / na + ((b - b.mean()) ** 2).var() / nb)
    z_var = (a.var() - b.var()) / se_var
    return [2 * stats.norm.sf(abs(z_mean)), 2 * stats.norm.sf(abs(z_var))]


@pytest.mark.parametrize("spec, params, x0", [
    ("ou.sde", {"theta": 1.3, "sigma": 0.8}, 1.5),
    ("gbm.sde", {"mu": 1.0, "sigma": 0.5}, 1.0),
])
def test_simulated_moments_agree(spec, params, x0):
    model = sdelang.load(EXAMPLES / spec, **params)
    N, ts, dt = 20000, [0.0, 0.5, 1.0], 0.05
    xj = np.asarray(model.compile("jax").simulate(jnp.full((N, 1), x0), ts, dt, seed=0))
    xt = model.compile("torch").simulate(torch.full((N, 1), x0, dtype=torch.float64), ts, dt, seed=0)
    xt = xt.detach().numpy()
    assert xj.shape == xt.shape == (3, N, 1)
    p = [pv for i in (1, 2) for pv in two_sample_pvalues(xj[i, :, 0], xt[i, :, 0])]
    assert min(p) > 1e-3 / len(p), p


def test_moment_comparison_detects_a_planted_drift_error():
    model = sdelang.load(EXAMPLES / "ou.sde", theta=1.3, sigma=0.8)
    N, ts, dt = 20000, [0.0, 0.5, 1.0], 0.05
    xj = np.asarray(model.compile("jax").simulate(jnp.full((N, 1), 1.5), ts, dt, seed=0))
    wrong = model.replace(drift=model.drift / 2).compile("torch")
    xt = wrong.simulate(torch.full((N, 1), 1.5, dtype=torch.float64), ts, dt, seed=0).detach().numpy()
    p = [pv for i in (1, 2) for pv in two_sample_pvalues(xj[i, :, 0], xt[i, :, 0])]
    assert min(p) < 1e-3 / len(p)
