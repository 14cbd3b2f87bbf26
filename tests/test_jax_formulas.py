"""JAX backend: generated drift, diffusion and Euler–Maruyama step against hand-written formulas at
100 random float64 (x, t) (rtol 1e-10), the lineax operators against the dense matrix, the module
API, and a planted wrong drift that the same comparison rejects."""
import pathlib

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
pytest.importorskip("diffrax")

import sdelang  # noqa: E402

pytestmark = pytest.mark.jax
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
RTOL = 1e-10


@pytest.fixture(autouse=True, scope="module")
def float64(jax_float64):
    """Every test here runs in float64."""


def compile_example(name, **params):
    return sdelang.load(EXAMPLES / f"{name}.sde").compile("jax", **params)


def random_points(n, low, high, seed=0, size=100):
    rng = np.random.default_rng(seed)
    y = rng.uniform(low, high, size=(size, n))
    t = rng.uniform(0.0, 1.0, size=size)
    return y, t


def assert_close(actual, expected):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=RTOL, atol=1e-300)


# ----------------------------------------------------------------------------- formulas
def test_ou_formulas():
    mod = compile_example("ou", theta=1.7, mu=0.3, sigma=0.6)
    y, t = random_points(1, -3, 3)
    assert_close(mod.drift_fn(t, y)[:, 0], 1.7 * (0.3 - y[:, 0]))
    assert_close(mod.diffusion_matrix(t, y)[:, 0, 0], np.full(100, 0.6))
    assert mod.diffusion_matrix(t, y).shape == (100, 1, 1)


def test_gbm_formulas():
    mod = compile_example("gbm", mu=0.07, sigma=0.3)
    y, t = random_points(1, 0.1, 5, seed=1)
    assert_close(mod.drift_fn(t, y)[:, 0], 0.07 * y[:, 0])
    assert_close(mod.diffusion_matrix(t, y)[:, 0, 0], 0.3 * y[:, 0])


def test_cir_formulas():
    mod = compile_example("cir")
    y, t = random_points(1, 0.001, 1, seed=2)
    assert_close(mod.drift_fn(t, y)[:, 0], 2.0 * (0.04 - y[:, 0]))
    assert_close(mod.diffusion_matrix(t, y)[:, 0, 0], 0.3 * np.sqrt(y[:, 0]))


def test_heston_formulas():
    mod = compile_example("heston", rho=-0.5)
    y, t = random_points(2, 0.01, 2, seed=3)
    S, v = y[:, 0], y[:, 1]
    assert_close(mod.drift_fn(t, y), np.stack([0.05 * S, 2.0 * (0.04 - v)], -1))
    G = np.zeros((100, 2, 2))
    G[:, 0, 0] = np.sqrt(v) * S
    G[:, 1, 0] = 0.3 * np.sqrt(v) * -0.5
    G[:, 1, 1] = 0.3 * np.sqrt(v) * np.sqrt(1 - 0.25)
    assert_close(mod.diffusion_matrix(t, y), G)


def test_vp_formulas_with_batch_times():
    mod = compile_example("vp", d=3)
    y, t = random_points(3, -4, 4, seed=4)
    beta = 0.1 + t * (20.0 - 0.1)
    assert_close(mod.drift_fn(t, y), -0.5 * beta[:, None] * y)
    assert_close(mod.diffusion_matrix(t, y), np.broadcast_to(np.sqrt(beta)[:, None], (100, 3)))
    # a scalar time broadcasts too
    assert_close(mod.drift_fn(0.25, y), -0.5 * (0.1 + 0.25 * 19.9) * y)
    assert mod.dimension == 3 and mod.n_states is None and mod.elementwise


# ----------------------------------------------------------------------------- operators, step
@pytest.mark.parametrize("name", ["heston", "gbm", "vp", "cld"])
def test_diffusion_operator_matches_dense_matrix(name):
    mod = compile_example(name)
    n = mod.dimension
    rng = np.random.default_rng(5)
    y = rng.uniform(0.05, 1.5, size=(7, n))
    t = 0.4
    w = rng.normal(size=mod.brownian_shape((7,)))
    G = np.asarray(mod.diffusion_matrix(t, y))
    expected = G * w if mod.elementwise else np.einsum("bnm,bm->bn", G, w)
    assert_close(mod.diffusion(t, y, None).mv(jnp.asarray(w)), expected)


@pytest.mark.parametrize("name", ["heston", "ou", "vp", "stratonovich_gbm"])
def test_euler_maruyama_step_is_ito_drift_plus_noise(name):
    model = sdelang.load(EXAMPLES / f"{name}.sde")
    mod = model.compile("jax")
    n = mod.dimension
    rng = np.random.default_rng(6)
    y = rng.uniform(0.05, 1.5, size=(100, n))
    dw = rng.normal(size=mod.brownian_shape((100,))) * 0.1
    h, t = 0.01, 0.3
    if model.calculus == "stratonovich":
        # dS = mu S dt + sigma S ∘ dW has Itô drift (mu + sigma²/2) S
        drift = (1.0 + 0.5 * 0.25) * y
    else:
        drift = np.asarray(mod.drift_fn(t, y))
    noise = np.asarray(mod.diffusion(t, y, None).mv(jnp.asarray(dw)))
    assert_close(mod.euler_maruyama_step(t, y, h, dw), y + drift * h + noise)


# ----------------------------------------------------------------------------- API
def test_module_metadata_and_parameters():
    mod = compile_example("heston", kappa=3.0)
    assert mod.state_names == ("S", "v") and mod.n_states == 2 and mod.n_brownians == 2
    assert mod.is_sde and not mod.elementwise and mod.noise_type == "general"
    assert (mod.t0, mod.t1) == (0, 1) and mod.kappa == 3.0
    assert mod.brownian_shape((5,)) == (5, 2)
    assert compile_example("gbm").brownian_shape(4) == (4, 1)
    with pytest.raises(TypeError):
        sdelang.load(EXAMPLES / "heston.sde").compile("jax", kapa=1.0)


def test_source_is_deterministic_and_readable():
    model = sdelang.load(EXAMPLES / "heston.sde")
    a, b = sdelang.emit(model, "jax"), sdelang.emit(sdelang.load(EXAMPLES / "heston.sde"), "jax")
    assert a == b
    assert "class Heston(runtime.CompiledModel)" in a and "# Generated by sdelang" in a
    for forbidden in ("cpu", "torch", "eval(", "import numpy"):
        assert forbidden not in a


def test_missing_net_raises_clearly_when_called():
    mod = compile_example("neural_ode")  # constructing without f is fine
    with pytest.raises(sdelang_jax_missing(), match="network 'f'"):
        mod.drift(0.0, jnp.ones((2, 2)), None)
    net = lambda y, t: -y * t  # noqa: E731
    out = compile_example("neural_ode", f=net).drift(0.5, jnp.ones((2, 2)), None)
    assert_close(out, -0.5 * np.ones((2, 2)))
    assert not compile_example("neural_ode", f=net).is_sde


def sdelang_jax_missing():
    from sdelang_jax import MissingNetError

    return MissingNetError


def test_traceback_shows_generated_lines():
    import traceback

    mod = compile_example("neural_ode", f=lambda y, t: 1 / 0)
    try:
        mod.drift(0.0, jnp.ones((1, 2)), None)
    except ZeroDivisionError:
        text = traceback.format_exc()
    assert "runtime.call_net(self.f, 'f', y, t)" in text


# ----------------------------------------------------------------------------- planted bug
def test_planted_half_drift_is_rejected():
    model = sdelang.load(EXAMPLES / "ou.sde")
    wrong = model.replace(drift=model.drift / 2).compile("jax")
    y, t = random_points(1, -3, 3)
    with pytest.raises(AssertionError):
        assert_close(wrong.drift_fn(t, y)[:, 0], 1.0 * (0.0 - y[:, 0]))


def test_user_names_never_clash_with_generated_locals():
    """Parameters named like the generated code's arguments/temporaries (h, dw, x0, xi, _c0)."""
    text = ("model A {\n state x\n param h = 0.5, dw = 2.0, x0 = 1.0, xi = 3.0, _c0 = 0.0\n"
            " dx = -h*(x - x0) dt + (dw + _c0) dW\n prior x ~ Normal(x0, xi)\n}\n")
    mod = sdelang.parse(text).compile("jax", _c0=0.25)
    y = jnp.full((1, 1), 2.0)
    assert_close(mod.euler_maruyama_step(0.0, y, 0.1, jnp.ones((1, 1))), [[2 - 0.5 * 1.0 * 0.1 + 2.25]])
    mean, std = mod.perturbation_kernel(y, 1.0)
    assert_close(mean, [[1 + np.exp(-0.5)]])
    assert_close(std, [[2.25 * np.sqrt((1 - np.exp(-1.0)) / 1.0)]])
    assert_close(mod.prior_log_prob(jnp.ones((1, 1))), [-np.log(3.0) - 0.5 * np.log(2 * np.pi)])
