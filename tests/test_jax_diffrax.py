"""Generated JAX modules inside diffrax: pathwise agreement with hand-written Euler–Maruyama on the
same Brownian path, strong orders against exact solutions (VERIFICATION.md: slope within 0.3 of
theory), several solvers (Euler, ItoMilstein/StratonovichMilstein per particle, Heun, SEA, ShARK,
SPaRK with a PIDController), and jit / vmap / grad."""
import pathlib

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
diffrax = pytest.importorskip("diffrax")
eqx = pytest.importorskip("equinox")

import sdelang  # noqa: E402

pytestmark = pytest.mark.jax
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(autouse=True, scope="module")
def float64(jax_float64):
    """Every test here runs in float64."""


def compile_example(name, **params):
    return sdelang.load(EXAMPLES / f"{name}.sde").compile("jax", **params)


@pytest.mark.slow
def test_heston_euler_equals_hand_written_em_on_the_same_path():
    """General (correlated) noise: diffeqsolve(Euler) vs a numpy EM with the same increments."""
    mu, kappa, theta, xi, rho = 0.05, 2.0, 0.09, 0.2, -0.6
    mod = compile_example("heston", mu=mu, kappa=kappa, theta=theta, xi=xi, rho=rho)
    B, dt, steps = 16, 0.05, 10
    y0 = jnp.tile(jnp.array([1.0, 0.09]), (B, 1))
    bm = diffrax.VirtualBrownianTree(0.0, 1.0, tol=1e-4, shape=mod.brownian_shape((B,)), key=jax.random.PRNGKey(0))
    saveat = diffrax.SaveAt(ts=jnp.arange(steps + 1) * dt)
    sol = diffrax.diffeqsolve(mod.terms(bm), diffrax.Euler(), 0.0, steps * dt, dt, y0, saveat=saveat)
    increments = jax.jit(jax.vmap(lambda k: bm.evaluate(k * dt, (k + 1) * dt)))(jnp.arange(steps))
    y = np.asarray(y0)
    for k in range(steps):
        dw = np.asarray(increments[k])
        S, v = y[:, 0], y[:, 1]
        dS = mu * S * dt + np.sqrt(v) * S * dw[:, 0]
        dv = kappa * (theta - v) * dt + xi * np.sqrt(v) * (rho * dw[:, 0] + np.sqrt(1 - rho**2) * dw[:, 1])
        y = y + np.stack([dS, dv], -1)
        np.testing.assert_allclose(np.asarray(sol.ys[k + 1]), y, rtol=1e-10)


def test_ou_euler_with_unsafe_brownian_path_follows_the_chain_law():
    from scipy import stats

    theta, mu, sigma, h, n, N = 1.0, 0.5, 0.7, 0.1, 10, 20000
    mod = compile_example("ou", theta=theta, mu=mu, sigma=sigma)
    bm = diffrax.UnsafeBrownianPath(shape=mod.brownian_shape((N,)), key=jax.random.PRNGKey(1))
    sol = diffrax.diffeqsolve(mod.terms(bm), diffrax.Euler(), 0.0, n * h, h, jnp.zeros((N, 1)),
                              adjoint=diffrax.ForwardMode())
    x = np.asarray(sol.ys[-1, :, 0])
    a = 1 - theta * h
    mean = mu * (1 - a**n)
    var = sigma**2 * h * (1 - a ** (2 * n)) / (1 - a**2)
    z = (x.mean() - mean) / np.sqrt(var / N)
    chi2 = np.sum((x - mean) ** 2) / var
    p = [2 * stats.norm.sf(abs(z)), 2 * min(stats.chi2.cdf(chi2, N), stats.chi2.sf(chi2, N))]
    assert min(p) > 1e-3 / 2, p


def strong_errors(mod, solver, exact, dts, *, paths=512, levy=diffrax.BrownianIncrement):
    """Mean |y_T - exact(W_T)| per dt, one VirtualBrownianTree per particle (vmap)."""

    def one(key, dt):
        bm = diffrax.VirtualBrownianTree(0.0, 1.0, tol=2**-12, shape=mod.brownian_shape(()), key=key,
                                         levy_area=levy)
        sol = diffrax.diffeqsolve(mod.terms(bm), solver, 0.0, 1.0, dt, jnp.ones(1), max_steps=4096)
        return sol.ys[-1], bm.evaluate(0.0, 1.0)

    run = jax.jit(jax.vmap(one, in_axes=(0, None)))
    keys = jax.random.split(jax.random.PRNGKey(2), paths)
    out = []
    for dt in dts:
        y, w = run(keys, jnp.asarray(dt))
        out.append(float(jnp.mean(jnp.abs(y - exact(w)))))
    return out


def slope(dts, errors):
    return np.polyfit(np.log(dts), np.log(errors), 1)[0]


DTS = [2**-3, 2**-5, 2**-7]


@pytest.mark.slow
@pytest.mark.parametrize("solver, order", [(diffrax.Euler(), 0.5), (diffrax.ItoMilstein(), 1.0)])
def test_ito_gbm_strong_order(solver, order):
    mod = compile_example("gbm", mu=1.0, sigma=0.5)
    errors = strong_errors(mod, solver, lambda w: jnp.exp(1.0 - 0.125 + 0.5 * w), DTS)
    assert abs(slope(DTS, errors) - order) < 0.3, errors


@pytest.mark.slow
def test_stratonovich_gbm_heun_strong_order():
    """dS = S dt + 0.5 S ∘ dW has S_T = exp(T + 0.5 W_T): Heun converges with order 1 to it; an Itô
    reading would converge to exp(T - 0.125 + 0.5 W_T) instead."""
    mod = compile_example("stratonovich_gbm")
    errors = strong_errors(mod, diffrax.Heun(), lambda w: jnp.exp(1.0 + 0.5 * w), DTS)
    assert abs(slope(DTS, errors) - 1.0) < 0.3, errors
    assert errors[-1] < 0.01


@pytest.mark.slow
def test_heston_milstein_per_particle_matches_fine_euler():
    """ItoMilstein on general noise runs per particle (vmap) and agrees with a fine Euler solve on
    the same path: error ≤ O(h) with h = 2^-6 vs the reference's O(√(2^-12))."""
    mod = compile_example("heston", xi=0.2, theta=0.09)

    def one(key):
        bm = diffrax.VirtualBrownianTree(0.0, 0.5, tol=2**-14, shape=mod.brownian_shape(()), key=key)
        terms = mod.terms(bm)
        y0 = jnp.array([1.0, 0.09])
        coarse = diffrax.diffeqsolve(terms, diffrax.ItoMilstein(), 0.0, 0.5, 2**-6, y0).ys[-1]
        fine = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, 0.5, 2**-12, y0, max_steps=4096).ys[-1]
        return coarse, fine

    coarse, fine = jax.jit(jax.vmap(one))(jax.random.split(jax.random.PRNGKey(3), 64))
    assert bool(jnp.all(jnp.isfinite(coarse)))
    assert float(jnp.mean(jnp.abs(coarse - fine))) < 0.02


@pytest.mark.slow
def test_additive_noise_solvers_agree_with_a_fine_reference():
    """SEA and ShARK (SpaceTimeLevyArea) on OU, batched state, one tree: strong order ≥ 1 - 0.3
    against a fine ShARK solve on the same path."""
    mod = compile_example("ou", theta=1.0, mu=0.5, sigma=0.7)
    N = 256
    bm = diffrax.VirtualBrownianTree(0.0, 1.0, tol=2**-12, shape=mod.brownian_shape((N,)),
                                     key=jax.random.PRNGKey(4), levy_area=diffrax.SpaceTimeLevyArea)
    terms = mod.terms(bm)
    y0 = jnp.zeros((N, 1))

    @jax.jit
    def solve(dt, solver_index):
        solver = [diffrax.SEA(), diffrax.ShARK()]
        branches = [lambda d, s=s: diffrax.diffeqsolve(terms, s, 0.0, 1.0, d, y0, max_steps=4096).ys[-1]
                    for s in solver]
        return jax.lax.switch(solver_index, branches, dt)

    reference = solve(jnp.asarray(2**-10), 1)
    for index in (0, 1):
        errors = [float(jnp.mean(jnp.abs(solve(jnp.asarray(dt), index) - reference))) for dt in (2**-2, 2**-4)]
        assert slope([2**-2, 2**-4], errors) > 0.7, (index, errors)


@pytest.mark.slow
def test_adaptive_spark_with_pid_controller():
    mod = compile_example("heston", xi=0.2, theta=0.09)
    B = 8
    y0 = jnp.tile(jnp.array([1.0, 0.09]), (B, 1))
    bm = diffrax.VirtualBrownianTree(0.0, 1.0, tol=2**-14, shape=mod.brownian_shape((B,)),
                                     key=jax.random.PRNGKey(5), levy_area=diffrax.SpaceTimeLevyArea)
    terms = mod.terms(bm)
    adaptive = diffrax.diffeqsolve(terms, diffrax.SPaRK(), 0.0, 1.0, 0.01, y0,
                                   stepsize_controller=diffrax.PIDController(rtol=1e-3, atol=1e-4),
                                   max_steps=10000)
    fine = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, 1.0, 2**-12, y0, max_steps=5000)
    assert int(adaptive.stats["num_accepted_steps"]) < 4096
    np.testing.assert_allclose(np.asarray(adaptive.ys[-1]), np.asarray(fine.ys[-1]), atol=0.03)


def test_ode_terms_with_tsit5():
    mod = sdelang.parse("model Decay {\n state x\n param a = 1.0\n dx = -a * x dt\n}\n").compile("jax", a=0.7)
    sol = diffrax.diffeqsolve(mod.terms(), diffrax.Tsit5(), 0.0, 2.0, 0.1, jnp.ones((3, 1)),
                              stepsize_controller=diffrax.PIDController(rtol=1e-10, atol=1e-10))
    np.testing.assert_allclose(np.asarray(sol.ys[-1]), np.exp(-1.4), rtol=1e-8)
    with pytest.raises(ValueError):
        compile_example("ou").terms()


# ----------------------------------------------------------------------------- transformations
def test_jit_vmap_and_grad_of_drift():
    mod = compile_example("heston")
    y = jax.random.uniform(jax.random.PRNGKey(6), (5, 2), minval=0.01, maxval=1.0)
    np.testing.assert_allclose(jax.jit(mod.drift)(0.3, y, None), mod.drift(0.3, y, None), rtol=1e-12)
    per_particle = jax.vmap(lambda yi: mod.drift(0.3, yi, None))(y)
    np.testing.assert_allclose(per_particle, mod.drift(0.3, y, None), rtol=1e-12)
    G = jax.vmap(lambda yi: mod.diffusion_matrix(0.3, yi))(y)
    np.testing.assert_allclose(G, mod.diffusion_matrix(0.3, y), rtol=1e-12)

    def total(kappa):
        return jnp.sum(type(mod)(kappa=kappa).drift(0.3, y, None))

    np.testing.assert_allclose(jax.grad(total)(2.0), jnp.sum(0.04 - y[:, 1]), rtol=1e-12)


@pytest.mark.slow
def test_grad_through_diffeqsolve_matches_finite_differences():
    cls = type(compile_example("ou"))
    bm = diffrax.VirtualBrownianTree(0.0, 1.0, tol=1e-4, shape=(4, 1), key=jax.random.PRNGKey(7))

    @jax.jit
    def loss(params):
        theta, sigma = params
        mod = cls(theta=theta, sigma=sigma)
        sol = diffrax.diffeqsolve(mod.terms(bm), diffrax.Euler(), 0.0, 1.0, 0.05, jnp.ones((4, 1)))
        return jnp.sum(sol.ys[-1] ** 2)

    p = jnp.array([1.2, 0.6])
    g = jax.grad(loss)(p)
    eps = 1e-6
    fd = [(loss(p.at[i].add(eps)) - loss(p.at[i].add(-eps))) / (2 * eps) for i in range(2)]
    np.testing.assert_allclose(g, fd, rtol=1e-6)


def test_grad_through_simulate_matches_finite_differences():
    cls = type(compile_example("ou"))

    def loss(theta):
        xs = cls(theta=theta, sigma=0.5).simulate(jnp.ones((8, 1)), [0.0, 0.5, 1.0], 0.05, seed=3)
        return jnp.mean(xs[-1] ** 2)

    eps = 1e-6
    fd = (loss(1.0 + eps) - loss(1.0 - eps)) / (2 * eps)
    np.testing.assert_allclose(jax.grad(loss)(1.0), fd, rtol=1e-6)


def test_module_is_a_pytree_with_parameter_leaves():
    mod = compile_example("ou", theta=2.0)
    leaves = jax.tree_util.tree_leaves(mod)
    assert 2.0 in leaves and 0.5 in leaves
    doubled = jax.tree_util.tree_map(lambda v: v * 2, mod)
    assert doubled.theta == 4.0 and doubled.sigma == 1.0
    out = eqx.filter_jit(lambda m, y: m.drift(0.0, y, None))(mod, jnp.ones((2, 1)))
    np.testing.assert_allclose(out, -2.0 * jnp.ones((2, 1)))
