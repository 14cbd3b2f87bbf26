"""Generated modules inside torchsde / torchdiffeq (every method valid for the noise type and
calculus, adjoints), and the fused ``simulate`` (sub-stepping, gradients)."""
from __future__ import annotations


import pytest
import sympy

torch = pytest.importorskip("torch")
torchsde = pytest.importorskip("torchsde")
torchdiffeq = pytest.importorskip("torchdiffeq")

from sdelang.model import Model, Param  # noqa: E402
from sdelang_torch import backend  # noqa: E402

from test_torch_models import gbm, heston, langevin_net, net_ode, ou_elementwise, param  # noqa: E402

ITO_METHODS = {
    "diagonal": ["euler", "milstein", "srk"],
    "scalar": ["euler", "milstein", "srk"],
    "additive": ["euler", "milstein", "srk"],
    "general": ["euler"],
}
STRATONOVICH_METHODS = ["euler_heun", "heun", "midpoint", "milstein", "reversible_heun"]


def _bm(y0, ts, m, dt, levy=None, seed=0):
    kw = {"levy_area_approximation": levy} if levy else {}
    return torchsde.BrownianInterval(t0=float(ts[0]), t1=float(ts[-1]), size=(y0.shape[0], m),
                                     dtype=y0.dtype, device=y0.device, dt=dt, entropy=seed, **kw)


def _scalar_model():
    x, y, s = sympy.symbols("x y sigma")
    return Model("Shared", (x, y), sympy.Matrix([-x, -y]), sympy.Matrix([[s * x], [s]]), (sympy.Symbol("W"),),
                 parameters=(Param(s, sympy.Float(0.5)),))


def _additive_model():
    x, y = sympy.symbols("x y")
    G = sympy.Matrix([[1, 0, sympy.Rational(1, 2)], [sympy.Rational(1, 2), 1, 0]])
    return Model("Additive", (x, y), sympy.Matrix([-x, -2 * y]), G, sympy.symbols("W1 W2 W3"))


CASES = {
    "diagonal": (lambda: gbm(mu=0.5, sigma=0.5), 1.0),
    "scalar": (_scalar_model, 1.0),
    "additive": (_additive_model, 0.5),
    "general": (heston, None),
}


@pytest.mark.parametrize("kind", list(ITO_METHODS))
def test_every_ito_method_runs_and_agrees_with_euler(kind):
    build, start = CASES[kind]
    mod = backend.compile(build())
    assert mod.noise_type == kind
    batch, dt = 64, 2 ** -8
    y0 = torch.full((batch, mod.n_states), start if start is not None else 1.0, dtype=torch.float64)
    if kind == "general":
        y0[:, 1] = 0.04
    ts = torch.tensor([0.0, 0.5], dtype=torch.float64)
    m = mod.n_brownians if kind != "diagonal" else mod.n_states
    results = {}
    for method in ITO_METHODS[kind]:
        bm = _bm(y0, ts, m, dt, levy="space-time")
        results[method] = torchsde.sdeint(mod, y0, ts, method=method, dt=dt, bm=bm)
        assert results[method].shape == (2, batch, mod.n_states)
        assert torch.isfinite(results[method]).all()
    # Same Brownian path: strong errors are O(sqrt(dt)) for Euler, so methods agree pathwise.
    for method, out in results.items():
        assert (out[-1] - results["euler"][-1]).abs().mean() < 0.05, method


def test_strong_error_against_exact_gbm_ito():
    mod = backend.compile(gbm(mu=0.5, sigma=0.5))
    y0 = torch.ones(512, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    errors = {}
    for dt in (2 ** -4, 2 ** -8):
        bm = _bm(y0, ts, 1, dt, levy="space-time", seed=3)
        exact = torch.exp((0.5 - 0.125) * 1.0 + 0.5 * bm(0.0, 1.0))
        for method in ("euler", "milstein", "srk"):
            out = torchsde.sdeint(mod, y0, ts, method=method, dt=dt, bm=bm)[-1]
            errors[method, dt] = (out - exact).abs().mean().item()
    # Strong orders 0.5 / 1 / 1.5: refining dt by 16 must cut the error by at least 16^order / 2.
    assert errors["euler", 2 ** -4] / errors["euler", 2 ** -8] > 2.0
    assert errors["milstein", 2 ** -4] / errors["milstein", 2 ** -8] > 8.0
    assert errors["srk", 2 ** -4] / errors["srk", 2 ** -8] > 16.0


def test_every_stratonovich_method_matches_exact_gbm():
    pytest.importorskip("sdelang.derive.calculus")
    mod = backend.compile(gbm(mu=0.5, sigma=0.5, calculus="stratonovich"))
    assert mod.sde_type == "stratonovich"
    y0 = torch.ones(256, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    dt = 2 ** -8
    bm = _bm(y0, ts, 1, dt, seed=5)
    exact = torch.exp(0.5 * 1.0 + 0.5 * bm(0.0, 1.0))  # Stratonovich GBM: S0 exp(μ t + σ W_t)
    for method in STRATONOVICH_METHODS:
        out = torchsde.sdeint(mod, y0, ts, method=method, dt=dt, bm=bm)[-1]
        assert (out - exact).abs().mean() < 0.02, method


class _MLP(torch.nn.Module):
    def __init__(self, n=2, hidden=16):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(n + 1, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, n))

    def forward(self, x, t):
        t = torch.as_tensor(t, dtype=x.dtype).expand(x.shape[0], 1) if torch.as_tensor(t).dim() == 0 \
            else t.reshape(-1, 1)
        return self.net(torch.cat([x, t], -1))


def test_sdeint_adjoint_gradients_match_direct_backprop():
    pytest.importorskip("sdelang.derive.calculus")
    torch.manual_seed(0)
    net = _MLP().double()
    model = langevin_net().replace(calculus="stratonovich")  # additive noise: same SDE in both calculi
    mod = backend.compile(model, f=net)
    assert list(mod.parameters()) and "nets.f.net.0.weight" in mod.state_dict()
    y0 = torch.randn(32, 2, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    dt = 0.05
    grads = []
    for solve in ("direct", "adjoint"):
        bm = _bm(y0, ts, 2, dt, seed=1)
        mod.zero_grad()
        if solve == "direct":
            out = torchsde.sdeint(mod, y0, ts, method="reversible_heun", dt=dt, bm=bm)
        else:
            out = torchsde.sdeint_adjoint(mod, y0, ts, method="reversible_heun", dt=dt, bm=bm,
                                          adjoint_method="adjoint_reversible_heun")
        (out[-1] ** 2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in mod.parameters()]))
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-9)


def test_ode_module_in_odeint_and_odeint_adjoint():
    torch.manual_seed(0)
    net = _MLP().double()
    mod = backend.compile(net_ode(), v=net)
    assert not mod.is_sde
    y0 = torch.randn(16, 2, dtype=torch.float64)
    ts = torch.tensor([0.0, 1.0], dtype=torch.float64)
    grads = []
    for solve in (torchdiffeq.odeint, torchdiffeq.odeint_adjoint):
        mod.zero_grad()
        out = solve(mod, y0, ts, rtol=1e-9, atol=1e-9)
        out[-1].pow(2).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in mod.parameters()]))
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-7)


def _decay_ode():
    x, th = sympy.symbols("x theta")
    return Model("Decay", (x,), sympy.Matrix([-th * x]), sympy.Matrix.zeros(1, 0), (),
                 parameters=(param("theta", 2.0),))


def test_simulate_substeps_between_output_times():
    mod = backend.compile(_decay_ode())
    x0 = torch.ones(3, 1, dtype=torch.float64)
    ts = torch.tensor([0.0, 0.1, 0.35, 0.35, 1.0], dtype=torch.float64)
    out = mod.simulate(x0, ts, dt=0.1)
    assert out.shape == (5, 3, 1)
    # k = ceil(Δ/dt) equal Euler steps: 1 step of 0.1, 3 of 0.25/3, none, 7 of 0.65/7.
    expected = [1.0, 0.8, 0.8 * (1 - 2 * 0.25 / 3) ** 3]
    expected += [expected[-1], expected[-1] * (1 - 2 * 0.65 / 7) ** 7]
    torch.testing.assert_close(out[:, 0, 0], torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=0)


def test_simulate_gradient_to_x0_is_the_em_chain_factor():
    mod = backend.compile(ou_elementwise(d=3, theta=1.5, sigma=0.5))
    x0 = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    out = mod.simulate(x0, torch.tensor([0.0, 1.0]), dt=0.01)
    out[-1].sum().backward()
    torch.testing.assert_close(x0.grad, torch.full_like(x0, (1 - 1.5 * 0.01) ** 100), rtol=1e-10, atol=0)


def test_simulate_gradient_reaches_net_parameters_and_is_reproducible():
    torch.manual_seed(0)
    net = _MLP()
    mod = backend.compile(langevin_net(), f=net)
    x0 = torch.randn(16, 2)
    ts = torch.linspace(0, 1, 3)
    a = mod.simulate(x0, ts, dt=0.05, seed=7)
    b = mod.simulate(x0, ts, dt=0.05, seed=7)
    c = mod.simulate(x0, ts, dt=0.05, seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    a[-1].pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_simulate_heston_float32_shapes():
    mod = backend.compile(heston())
    x0 = torch.tensor([[1.0, 0.04]]).repeat(100, 1)
    out = mod.simulate(x0, torch.linspace(0, 1, 11), dt=0.01, seed=0)
    assert out.shape == (11, 100, 2) and out.dtype == torch.float32
    assert torch.equal(out[0], x0)
