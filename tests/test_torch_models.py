"""Models for the torch backend tests, built directly with ``sdelang.model.Model`` (no parser),
plus tests that the generated source is deterministic and safe."""
from __future__ import annotations

import pytest
import sympy
from sympy import Matrix, Symbol, sqrt

from sdelang.model import Distribution, Interval, Model, Param, net_output

from derive_models import cir, gbm, heston, ou, param  # noqa: F401  (re-exported to the torch tests)

torch = pytest.importorskip("torch")

t = Symbol("t")
POSITIVE = Interval(sympy.S.Zero, sympy.S.Infinity)


def ou_elementwise(d=2, theta=1.0, sigma=0.5):
    """dx = -θ x dt + σ dW on x[d] (independent components)."""
    x = Symbol("x")
    th, s = Symbol("theta"), Symbol("sigma")
    return Model("OUd", (x,), Matrix([-th * x]), Matrix([[s]]), (Symbol("W"),),
                 parameters=(param("d", d, integer=True), param("theta", theta, True), param("sigma", sigma, True)),
                 dimension=Symbol("d"))


def vp_beta():
    bmin, bmax = Symbol("beta_min"), Symbol("beta_max")
    return bmin + t * (bmax - bmin)


def vp(d=2, elementwise=True):
    """dx = -½ β(t) x dt + sqrt(β(t)) dW on x[d], β(t) = β_min + t (β_max - β_min), prior N(0, 1)."""
    x = Symbol("x")
    beta = vp_beta()
    params = (param("d", d, integer=True), param("beta_min", 0.1, True), param("beta_max", 20.0, True))
    return Model("VP", (x,), Matrix([-beta * x / 2]), Matrix([[sqrt(beta)]]), (Symbol("W"),),
                 parameters=params if elementwise else params[1:],
                 dimension=Symbol("d") if elementwise else None,
                 prior=(("x", Distribution("normal", 0, 1)),))


def vp_flow_by_hand(factor=sympy.Rational(1, 2)):
    """The VP probability-flow ODE written out: dx/dt = -½ β x - factor · β · score(x, t).
    factor = ½ is correct; factor = 1 is the planted bug."""
    x = Symbol("x")
    beta = vp_beta()
    score = net_output("score", 0, t, (x,))
    params = (param("d", 2, integer=True), param("beta_min", 0.1, True), param("beta_max", 20.0, True))
    from sdelang.model import Net
    return Model("VPFlowByHand", (x,), Matrix([-beta * x / 2 - factor * beta * score]), Matrix.zeros(1, 0), (),
                 parameters=params, dimension=Symbol("d"), prior=(("x", Distribution("normal", 0, 1)),),
                 nets=(Net("score", ("x", "t")),))


def langevin_net(sigma=0.7):
    """dx = f(x, y, t)[0] dt + σ dW1, dy = f(x, y, t)[1] dt + σ dW2: a drift network to train."""
    x, y = Symbol("x"), Symbol("y")
    from sdelang.model import Net
    f0 = net_output("f", 0, t, (x, y))
    f1 = net_output("f", 1, t, (x, y))
    s = Symbol("sigma")
    return Model("NetSDE", (x, y), Matrix([f0, f1]), Matrix([[s, 0], [0, s]]), (Symbol("W1"), Symbol("W2")),
                 parameters=(param("sigma", sigma, True),), nets=(Net("f", ("x", "y", "t")),))


def net_ode():
    """dx/dt = v(x, t): a velocity network (a continuous normalising flow)."""
    x, y = Symbol("x"), Symbol("y")
    from sdelang.model import Net
    return Model("NetODE", (x, y), Matrix([net_output("v", 0, t, (x, y)), net_output("v", 1, t, (x, y))]),
                 Matrix.zeros(2, 0), (), nets=(Net("v", ("x", "y", "t")),))


ALL_MODELS = [ou, ou_elementwise, gbm, cir, heston, vp, vp_flow_by_hand, langevin_net, net_ode,
              lambda: gbm(calculus="stratonovich")]


# ----------------------------------------------------------------------------- emit tests
@pytest.mark.parametrize("build", ALL_MODELS)
def test_emit_is_deterministic(build):
    from sdelang_torch import backend

    first = backend.emit(build())
    second = backend.emit(build())
    assert first.encode() == second.encode()


@pytest.mark.parametrize("build", ALL_MODELS)
def test_generated_source_imports_only_torch_and_runtime(build):
    from sdelang_torch import backend

    src = backend.emit(build())
    imports = sorted(line for line in src.splitlines() if line.startswith(("import ", "from ")))
    assert imports == ["from sdelang_torch import runtime", "import math", "import torch"]
    compile(src, "<test>", "exec")


def test_unvalidated_names_never_reach_the_source():
    from sdelang_torch import backend

    m = ou()
    # A hostile model name is cleaned into an identifier, never written out as it is.
    src = backend.emit(m.replace(name="x; import os\nos.system('echo pwned')"))
    assert "import os" not in src and "os.system" not in src
    # A hostile state, parameter or symbol name is refused.
    bad = Symbol("x; import os")
    with pytest.raises(ValueError):
        backend.emit(m.replace(states=(bad,), drift=Matrix([-bad]), diffusion=Matrix([[1]])))
    with pytest.raises(ValueError):
        backend.emit(m.replace(drift=Matrix([Symbol("__import__('os')")])))
    with pytest.raises(ValueError):
        backend.emit(m.replace(parameters=(Param(Symbol("a+b"), sympy.Float(1.0)),)))


def test_reserved_and_underscore_names_are_renamed():
    from sdelang_torch import backend

    y, self_, c0 = Symbol("y"), Symbol("self"), Symbol("_c0")
    m = Model("Clash", (y,), Matrix([-self_ * y + c0]), Matrix([[1]]), (Symbol("W"),),
              parameters=(param("self", 2.0), param("_c0", 0.5)))
    mod = backend.compile(m)
    x = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    assert torch.allclose(mod.f(0.0, x), -2.0 * x + 0.5)
    mod = backend.compile(m, self=1.0)
    assert torch.allclose(mod.f(0.0, x), -x + 0.5)
