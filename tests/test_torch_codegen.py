"""Generated drift and diffusion against hand-derived formulas at 100 random float64 (x, t)
points (rtol 1e-10), torchsde layouts for every noise type, and the fused step."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from sdelang_torch import backend  # noqa: E402

from test_torch_models import cir, gbm, heston, langevin_net, ou, ou_elementwise, vp  # noqa: E402

RTOL = 1e-10
N = 100


def _points(n_states, low, high, seed):
    g = torch.Generator().manual_seed(seed)
    y = low + (high - low) * torch.rand((N, n_states), generator=g, dtype=torch.float64)
    t = torch.rand(N, generator=g, dtype=torch.float64)
    return y, t


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=RTOL, atol=1e-14)


def _per_point(fn, y, t):
    """Evaluate fn at each (y_i, t_i) with a 0-dim time, as torchsde calls it."""
    return torch.cat([fn(t[i], y[i:i + 1]) for i in range(len(t))])


def test_ou_matches_formula():
    mod = backend.compile(ou(), theta=1.7, mu=0.3, sigma=0.8)
    y, t = _points(1, -3, 3, 0)
    _close(_per_point(mod.f, y, t), 1.7 * (0.3 - y))
    _close(_per_point(mod.g, y, t), torch.full_like(y, 0.8))
    assert mod.noise_type == "diagonal" and mod.sde_type == "ito"


def test_gbm_matches_formula():
    mod = backend.compile(gbm(), mu=0.3, sigma=0.6)
    y, t = _points(1, 0.1, 5, 1)
    _close(_per_point(mod.f, y, t), 0.3 * y)
    _close(_per_point(mod.g, y, t), 0.6 * y)


def test_cir_matches_formula():
    mod = backend.compile(cir())
    y, t = _points(1, 0.001, 1, 2)
    _close(_per_point(mod.f, y, t), 2.0 * (0.04 - y))
    _close(_per_point(mod.g, y, t), 0.3 * torch.sqrt(y))


def test_heston_matches_formula_general_noise():
    mod = backend.compile(heston())
    y, t = _points(2, 0.01, 2, 3)
    S, v = y[:, 0], y[:, 1]
    mu, k, th, xi, rho = 0.05, 2.0, 0.04, 0.3, -0.7
    _close(_per_point(mod.f, y, t), torch.stack([mu * S, k * (th - v)], -1))
    G = torch.zeros(N, 2, 2, dtype=torch.float64)
    G[:, 0, 0] = S * torch.sqrt(v)
    G[:, 1, 0] = xi * rho * torch.sqrt(v)
    G[:, 1, 1] = xi * math.sqrt(1 - rho ** 2) * torch.sqrt(v)
    assert mod.noise_type == "general"
    _close(_per_point(mod.g, y, t), G)
    _close(mod.diffusion_matrix(t, y), G)
    w = torch.randn(N, 2, dtype=torch.float64)
    _close(mod.g_prod(t, y, w), torch.einsum("bij,bj->bi", G, w))
    f, gw = mod.f_and_g_prod(t, y, w)
    _close(gw, torch.einsum("bij,bj->bi", G, w))
    f2, g2 = mod.f_and_g(t, y)
    _close(f, f2)
    _close(g2, G)


def test_vp_matches_formula_with_batched_time():
    mod = backend.compile(vp(d=3))
    y, t = _points(3, -3, 3, 4)
    beta = (0.1 + t * (20.0 - 0.1)).unsqueeze(-1)
    _close(mod.f(t, y), -0.5 * beta * y)
    _close(mod.g(t, y), torch.sqrt(beta).expand(N, 3))
    _close(_per_point(mod.f, y, t), -0.5 * beta * y)
    _close(mod.diffusion_matrix(t, y), torch.sqrt(beta).expand(N, 3))
    assert mod.elementwise and mod.n_states is None and mod.dimension == 3


def test_vp_perturbation_kernel_matches_formula():
    mod = backend.compile(vp(d=2))
    y, t = _points(2, -3, 3, 5)
    integral = 0.1 * t + 0.5 * (20.0 - 0.1) * t ** 2
    alpha = torch.exp(-0.5 * integral).unsqueeze(-1)
    mean, std = mod.perturbation_kernel(y, t)
    _close(mean, alpha * y)
    _close(std, torch.sqrt(1 - alpha ** 2).expand(N, 2))


def test_ou_kernel_and_prior():
    mod = backend.compile(ou(), theta=2.0, mu=1.0, sigma=0.5)
    y, t = _points(1, -3, 3, 6)
    mean, std = mod.perturbation_kernel(y, t)
    decay = torch.exp(-2.0 * t).unsqueeze(-1)
    _close(mean, 1.0 + (y - 1.0) * decay)
    _close(std, torch.sqrt(0.25 / 4.0 * (1 - decay ** 2)))
    with pytest.raises(NotImplementedError):
        mod.prior_sample(10)


def test_noise_layouts():
    x2 = torch.ones(5, 2, dtype=torch.float64)
    assert backend.compile(ou()).g(0.0, torch.ones(5, 1)).shape == (5, 1)
    assert backend.compile(ou_elementwise(d=4)).g(0.0, torch.ones(5, 4)).shape == (5, 4)
    assert backend.compile(heston()).g(0.0, x2).shape == (5, 2, 2)
    assert backend.compile(langevin_net()).noise_type == "diagonal"


def test_scalar_noise_layout():
    import sympy
    from sdelang.model import Model

    x, y, s = sympy.symbols("x y sigma")
    m = Model("Shared", (x, y), sympy.Matrix([-x, -y]), sympy.Matrix([[s * x], [s]]), (sympy.Symbol("W"),),
              parameters=(__import__("sdelang").model.Param(s, sympy.Float(0.5)),))
    mod = backend.compile(m)
    z = torch.randn(7, 2, dtype=torch.float64)
    assert mod.noise_type == "scalar"
    g = mod.g(0.0, z)
    assert g.shape == (7, 2, 1)
    _close(g[:, :, 0], torch.stack([0.5 * z[:, 0], torch.full_like(z[:, 0], 0.5)], -1))
    w = torch.randn(7, 1, dtype=torch.float64)
    _close(mod.g_prod(0.0, z, w), g[:, :, 0] * w)


def test_fused_step_is_euler_maruyama():
    mod = backend.compile(heston())
    y, t = _points(2, 0.01, 2, 7)
    dW = 0.1 * torch.randn(N, 2, dtype=torch.float64)
    h = 0.01
    expected = y + mod.f(0.3, y) * h + torch.einsum("bij,bj->bi", mod.g(0.3, y), dW)
    _close(mod._step(0.3, y, h, dW), expected)


BANANA = """
model Banana {
    param b = 0.5
    state x, y
    brownian W1, W2
    dx = (b*x*(-b*(x^2 - 1) + y) - x/2) dt + dW1
    dy = (b*(x^2 - 1)/2 - y/2) dt + dW2
}
"""


def test_fused_step_with_additive_diagonal_noise_is_whole_tensor():
    """Identity (or one state-independent) diffusion: y + (_h*torch.stack([f...]) + _dW), one
    stack and no per-component noise; sums lead with a positive term (y_ - _c0)."""
    import sdelang

    src = sdelang.emit(sdelang.parse(BANANA), "torch")
    step = src[src.index("def _step"):src.index("def _noise_shape")]
    assert "_dW0" not in step and step.count("torch.stack") == 1
    assert "+ _dW)" in step and "_h*torch.stack([" in step
    assert "y_ - _c0" in step and "-_c0 + y_" not in src
    mod = backend.compile(sdelang.parse(BANANA))
    y, _ = _points(2, -2, 2, 11)
    dW = 0.1 * torch.randn(N, 2, dtype=torch.float64)
    _close(mod._step(0.3, y, 0.01, dW), y + mod.f(0.3, y) * 0.01 + dW)
    for model, n in ((ou(), 1), (cir(), 1)):  # additive c*_dW and state-dependent (per component)
        mod = backend.compile(model)
        y, _ = _points(n, 0.1, 2, 12)
        dW = 0.1 * torch.randn(N, n, dtype=torch.float64)
        _close(mod._step(0.3, y, 0.01, dW), y + mod.f(0.3, y) * 0.01 + mod.g(0.3, y) * dW)


def test_stratonovich_module_keeps_its_calculus_and_steps_with_ito_drift():
    pytest.importorskip("sdelang.derive.calculus")
    mod = backend.compile(gbm(mu=0.3, sigma=0.6, calculus="stratonovich"))
    assert mod.sde_type == "stratonovich"
    y, t = _points(1, 0.1, 5, 8)
    _close(mod.f(t, y), 0.3 * y)  # torchsde gets the Stratonovich drift as written
    h = 0.01
    zero = torch.zeros_like(y)
    # Euler–Maruyama in simulate uses the Itô drift f + ½ g g' = (μ + σ²/2) S
    _close(mod._step(0.0, y, h, zero), y + h * (0.3 + 0.18) * y)


def test_missing_net_raises_when_called_not_before():
    mod = backend.compile(langevin_net())
    with pytest.raises(RuntimeError, match="network 'f' is not attached"):
        mod.f(0.0, torch.zeros(3, 2))


def test_net_receives_whole_state_and_original_time():
    seen = {}

    def f(x, t):
        seen["shape"], seen["t"] = tuple(x.shape), t
        return torch.stack([-x[:, 1], x[:, 0]], -1)

    mod = backend.compile(langevin_net(), f=f)
    y = torch.randn(6, 2, dtype=torch.float64)
    _close(mod.f(torch.tensor(0.25), y), torch.stack([-y[:, 1], y[:, 0]], -1))
    assert seen["shape"] == (6, 2) and float(seen["t"]) == 0.25
    _close(mod.g(0.0, y), torch.full_like(y, 0.7))


def test_unknown_compile_argument_is_an_error():
    with pytest.raises(TypeError, match="no network or parameter"):
        backend.compile(ou(), thetta=1.0)


def test_registry_and_model_compile_reach_this_backend():
    import sdelang

    src = sdelang.emit(ou(), "torch")
    assert "class OU(runtime.CompiledSDE)" in src
    mod = ou().compile("torch", theta=3.0)
    assert mod.param_values["theta"] == 3.0 and isinstance(mod, torch.nn.Module)


def test_tracebacks_show_generated_lines():
    import traceback

    mod = backend.compile(langevin_net())
    try:
        mod.f(0.0, torch.zeros(3, 2))
    except RuntimeError:
        text = traceback.format_exc()
    assert "runtime.call_net(self.nets_by_name, 'f', y, " in text
