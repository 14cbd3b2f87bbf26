"""``run_numeric_check``: the right Langevin model passes, planted bugs fail, on both backends.

Deterministic parts (the EM chain's stationary law, the generator's spectral gap) are checked
against closed forms. Statistical parts run at the check's own family-wise α = 1e-3 with fixed
seeds; N = 2000 is what VERIFICATION.md's table asks for a variance ×2 (≈ 1 900) and N = 4000 is
the default. Every bug is one that a real implementation makes: a flipped drift sign, the missing
½ in ½∇log p, a diffusion of the wrong size (×√2, ×½), a complete-recipe drift without its
∂_j(D_ij/2 + Q_ij) correction.
"""
import numpy as np
import pytest
import scipy.stats
import sympy

from sdelang.check.dynamics import Dynamics
from sdelang.check.horizon import generator_gap_1d
from sdelang.check.numeric import NumericCheckResult, run_numeric_check
from sdelang.check.step_bias import em_stationary_1d, step_bias
from sdelang.emit.registry import BackendError, get_backend
from sdelang.model import Model
from sdelang.model.model import Density, Param

x, y = sympy.symbols("x y")


def backend_or_skip(name):
    try:
        get_backend(name)
    except BackendError as exc:  # pragma: no cover - depends on the installation
        pytest.skip(str(exc))
    return name


BACKENDS = [pytest.param("torch", marks=pytest.mark.torch), pytest.param("jax", marks=pytest.mark.jax)]


def langevin(name, U, states, drift_scale=1, noise_scale=1):
    """dx = (drift_scale/2) ∇log p dt + noise_scale dW, p = exp(-U): stationary iff both scales are 1."""
    f = sympy.Matrix([sympy.Rational(1, 2) * drift_scale * sympy.diff(-U, s) for s in states])
    G = noise_scale * sympy.eye(len(states))
    return Model(name, tuple(states), f, G, brownians=tuple(sympy.Symbol(f"W{i + 1}") for i in range(len(states))),
                 densities=(Density("p", sympy.exp(-U)),))


DOUBLE_WELL = (x**2 - 1) ** 2 + y**2 / 2


def preconditioned(correction=True):
    """Ma–Chen–Fox complete recipe for p ∝ exp(-x²/2 - y⁴/4) with G = [[1, 0], [c x, 1]] and
    Q = [[0, q], [-q, 0]]; the ∂_x(D_yx/2 + Q_yx) = c/2 term is what ``correction`` drops."""
    c, q = sympy.symbols("c q")
    fx = -x / 2 - (c * x / 2 + q) * y**3
    fy = -(c * x / 2 - q) * x - (1 + c**2 * x**2) / 2 * y**3 + (c / 2 if correction else 0)
    return Model("Preconditioned", (x, y), sympy.Matrix([fx, fy]), sympy.Matrix([[1, 0], [c * x, 1]]),
                 brownians=(sympy.Symbol("W1"), sympy.Symbol("W2")),
                 parameters=(Param(c, sympy.Float(0.8)), Param(q, sympy.Float(0.5))),
                 densities=(Density("p", sympy.exp(-x**2 / 2 - y**4 / 4)),))


# ------------------------------------------------------------------ deterministic: bias and horizon
def test_em_chain_stationary_law_is_exact_for_ou():
    # EM on dx = -θ x dt + σ dW has stationary variance (σ²/2θ) / (1 - θh/2)
    theta, sigma, h = 1.5, 0.7, 0.1
    grid, pi = em_stationary_1d(lambda v: -theta * v, lambda v: sigma**2 + 0 * v, -4, 4, h)
    assert pi @ grid**2 == pytest.approx((sigma**2 / (2 * theta)) / (1 - theta * h / 2), rel=1e-8)


def test_linearised_bias_is_exact_for_a_linear_model_up_to_its_safety_factor():
    # coupled 2-D OU (not decoupled, so the linearisation is used): B = -θ I + ω J, D = σ² I;
    # a rotation does not change EM's stationary variance: (σ²/2θ)/(1 - θh/2 + ... ) from Lyapunov
    theta, omega, h = 1.0, 0.5, 0.05
    m = Model("OU2", (x, y), sympy.Matrix([-theta * x + omega * y, -omega * x - theta * y]), sympy.eye(2),
              brownians=(sympy.Symbol("W1"), sympy.Symbol("W2")))
    dyn = Dynamics.from_model(m, 2)
    assert not dyn.decoupled
    bias = step_bias(dyn, h, 4000, 16000, np.zeros((10, 2)))
    # Σ_h = a Σ_h aᵀ + h I with a = (1 - θh) I + ωh J  ⇒  Σ_h = h / (1 - (1-θh)² - (ωh)²) I
    v_h, v_0 = h / (1 - (1 - theta * h) ** 2 - (omega * h) ** 2), 1 / (2 * theta)
    assert bias.second_moment_shift == pytest.approx(3.0 * (v_h - v_0), rel=1e-8)


def test_generator_gap_of_ou_is_theta():
    # the OU generator's spectrum is {-kθ}; the upwind grid is O(Δ) accurate
    theta = 1.5
    gap = generator_gap_1d(lambda v: -theta * v, lambda v: 1 + 0 * v, -5, 5, cells=800)
    assert gap == pytest.approx(theta, rel=0.02)


# ------------------------------------------------------------------ statistical, both backends
@pytest.mark.parametrize("backend", BACKENDS)
def test_right_double_well_passes_with_report_and_plot(backend, tmp_path):
    backend_or_skip(backend)
    model = langevin("DoubleWell", DOUBLE_WELL, (x, y))
    path = tmp_path / "dw.stationarity.png"
    n = 4000 if backend == "torch" else 2000  # the default N once; N = 2000 keeps the suite fast
    r = run_numeric_check(model, "p", backend=backend, seed=0, plot=str(path), **({} if n == 4000 else {"n": n}))
    assert isinstance(r, NumericCheckResult)
    assert r.passed, str(r)
    assert r.n == n and r.n_reference == 4 * n and r.sampler_exact
    assert r.horizon >= 5 * r.relaxation_time and "spectral gap" in r.horizon_method
    assert r.step_bias.moment_z <= 0.25 and r.step_bias.ks_gap < 0.01
    assert path.exists() and path.stat().st_size > 10_000
    text = str(r)
    assert "PASSED" in text and "exact inverse CDF" in text and f"dt = {r.dt:.3g}" in text


BUGS = {
    "flipped drift sign": dict(drift_scale=-1),
    "missing 1/2 in the drift": dict(drift_scale=2),
    "diffusion x sqrt(2)": dict(noise_scale=sympy.sqrt(2)),
    "diffusion x 1/2": dict(noise_scale=sympy.Rational(1, 2)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bug", list(BUGS))
def test_planted_bug_fails(backend, bug):
    backend_or_skip(backend)
    # 2-D: on the Gaussian factor y every bug changes the variance (×½, ×2, ×4); on the double-well
    # factor x alone a missing ½ (p² instead of p) moves far less mass (KS p ≈ 1e-4 at N = 2000)
    model = langevin("Buggy", DOUBLE_WELL, (x, y), **BUGS[bug])
    r = run_numeric_check(model, backend=backend, seed=1, n=2000)
    assert not r.passed, str(r)
    assert r.p_value < 1e-6, str(r)  # not a borderline rejection


@pytest.mark.parametrize("backend", BACKENDS)
def test_complete_recipe_with_state_dependent_general_noise(backend):
    backend_or_skip(backend)
    right = run_numeric_check(preconditioned(), backend=backend, seed=2, n=2000)
    assert right.passed, str(right)
    wrong = run_numeric_check(preconditioned(correction=False), backend=backend, seed=2, n=2000)
    assert not wrong.passed, str(wrong)


def test_relaxation_from_a_wrong_start():
    backend = backend_or_skip("torch")
    model = langevin("DoubleWell1", (x**2 - 1) ** 2, (x,))
    r = run_numeric_check(model, backend=backend, seed=3, n=2000, start="wrong")
    assert r.passed, str(r)
    assert "wrong start" in str(r)
    # power: stopped after a fraction of the relaxation time, the wrong start is still visible
    short = run_numeric_check(model, backend=backend, seed=3, n=2000, start="wrong", time=0.3 * r.relaxation_time)
    assert not short.passed, str(short)


@pytest.mark.slow
def test_false_alarm_rate_is_consistent_with_the_level():
    """Six seeds of a right model: none fails (each at α = 1e-3), and the per-seed KS p-values of the
    coordinate are consistent with U(0, 1) (KS test of uniformity at 1e-3)."""
    backend = backend_or_skip("jax")
    model = langevin("Gauss", (x - 1) ** 2 / (2 * sympy.Rational(1, 4)), (x,))
    module = model.compile(backend)
    results = [run_numeric_check(model, backend=backend, seed=s, n=2000, module=module) for s in range(6)]
    assert all(r.passed for r in results), "\n".join(str(r) for r in results if not r.passed)
    ks = [next(t.p_value for t in r.tests if t.name == "KS x") for r in results]
    assert scipy.stats.kstest(ks, "uniform").pvalue > 1e-3, ks


def test_banana_with_reference_sampler_passes():
    backend = backend_or_skip("torch")
    b = sympy.Rational(1, 2)
    model = langevin("Banana", x**2 / 2 + (y - b * (x**2 - 1)) ** 2 / 2, (x, y))
    r = run_numeric_check(model, backend=backend, seed=4, n=2000)
    assert r.passed, str(r)
    assert not r.sampler_exact and "reference grid" in r.sampler and "linearisation" in r.horizon_method
