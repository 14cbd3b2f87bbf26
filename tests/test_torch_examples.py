"""Every example spec compiles with the torch backend, and its generated drift and diffusion equal
an independent evaluation of the model's SymPy expressions (``sympy.lambdify`` with NumPy) at
random float64 points (rtol 1e-10); derived reverse / flow modules compile and evaluate."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import sympy

torch = pytest.importorskip("torch")

import sdelang  # noqa: E402
from sdelang.model.symbols import NetOutput  # noqa: E402
from sdelang_torch import backend  # noqa: E402

EXAMPLES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "examples", "*.sde")))
N = 50


def _identity_net(x, t):
    return -x


def _points(model, mod, seed):
    rng = np.random.default_rng(seed)
    n = mod.dimension or 2
    y = rng.uniform(0.1, 1.5, size=(N, n))
    t = rng.uniform(float(mod.t0), float(mod.t1), size=N)
    return y, t


def _numpy_reference(model, exprs, y, t):
    """Column-wise NumPy evaluation of per-state expressions (elementwise: applied per component)."""
    subs = model.param_substitution()
    args = list(model.states) + [model.time]
    out = []
    for e in exprs:
        f = sympy.lambdify(args, sympy.sympify(e).subs(subs), "numpy")
        if model.elementwise:
            out.append(np.broadcast_to(f(y, t[:, None]), y.shape))
        else:
            out.append(np.broadcast_to(f(*[y[:, i] for i in range(y.shape[1])], t), t.shape))
    return out


@pytest.mark.parametrize("path", EXAMPLES, ids=[os.path.basename(p) for p in EXAMPLES])
def test_example_compiles_and_matches_sympy(path):
    model = sdelang.load(path)
    nets = {n.name: _identity_net for n in model.nets}
    mod = backend.compile(model, **nets)
    y, t = _points(model, mod, 0)
    yt, tt = torch.from_numpy(y), torch.from_numpy(t)
    drift = mod.drift_fn(tt, yt)
    assert drift.shape == yt.shape and drift.dtype == torch.float64
    uses_nets = any(e.atoms(NetOutput) for e in list(model.drift_matrix) + list(model.diffusion_matrix))
    if uses_nets:
        assert torch.isfinite(drift).all()
        return
    expected = _numpy_reference(model, list(model.drift_matrix), y, t)
    expected = expected[0] if model.elementwise else np.stack(expected, -1)
    np.testing.assert_allclose(drift.numpy(), expected, rtol=1e-10, atol=1e-12)
    if mod.is_sde:
        G = mod.diffusion_matrix(tt, yt)
        if model.elementwise:
            ref = _numpy_reference(model, [model.diffusion_matrix[0, 0]], y, t)[0]
        else:
            n, m = model.diffusion_matrix.shape
            entries = _numpy_reference(model, list(model.diffusion_matrix), y, t)
            ref = np.stack(entries, -1).reshape(N, n, m)
        np.testing.assert_allclose(G.numpy(), ref, rtol=1e-10, atol=1e-12)


SDE_EXAMPLES = [p for p in EXAMPLES if not sdelang.load(p).is_ode]  # an ODE has no reverse SDE or flow


@pytest.mark.parametrize("path", SDE_EXAMPLES, ids=[os.path.basename(p) for p in SDE_EXAMPLES])
def test_example_derived_modules_compile(path):
    model = sdelang.load(path)
    mod = backend.compile(model, **{n.name: _identity_net for n in model.nets}, score=_identity_net)
    y, t = _points(model, mod, 1)
    yt = torch.from_numpy(y)
    for derived in (mod.reverse(), mod.probability_flow()):
        assert derived.param_values == {k: v for k, v in mod.param_values.items() if k in derived.param_values}
        v = derived.drift_fn(torch.tensor(0.5 * (derived.t0 + derived.t1), dtype=torch.float64), yt)
        assert v.shape == yt.shape and torch.isfinite(v).all()
