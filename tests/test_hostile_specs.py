"""Hostile and careless specs (issue 10): a located SpecError, or a model that goes through every
derivation, both code generators and both backends — never foreign code, a traceback or a hang.

Every step runs under a time budget (``sdelang.time_budget``), so a step that would hang ends with
BudgetExceeded, which these tests treat as a failure for the specs that must be accepted.
"""
from __future__ import annotations

import ast as pyast

import numpy as np
import pytest
import sympy

import sdelang
from sdelang import DerivationError, SpecError
from sdelang.model import build

from hostile_corpus import ACCEPTED, REFUSED

BACKENDS = ["torch", "jax"]


@pytest.fixture(autouse=True)
def strict_front_end(monkeypatch):
    """No internal exception may hide behind the last-resort guard of the semantic pass."""
    monkeypatch.setattr(build, "GUARD_UNEXPECTED", False)


@pytest.mark.parametrize("name, text, line, column, fragment", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_specs_fail_at_the_spot(name, text, line, column, fragment):
    with sdelang.time_budget(30):
        with pytest.raises(SpecError) as info:
            sdelang.parse(text, path=f"{name}.sde")
    err = info.value
    assert fragment in err.message
    assert err.path == f"{name}.sde"
    if line is not None:
        assert err.line == line
    if column is not None:
        assert err.column == column
    rendered = str(err)
    assert rendered.startswith(f"{name}.sde:")
    if err.line is not None:
        assert "^" in rendered


def only_generated_definitions(source: str) -> None:
    """The generated module holds imports and one class of methods, properties and constants:
    no statement that could have come from a user's string."""
    tree = pyast.parse(source)
    classes = [node for node in tree.body if isinstance(node, pyast.ClassDef)]
    assert len(classes) == 1
    assert all(isinstance(node, (pyast.Import, pyast.ImportFrom, pyast.ClassDef)) for node in tree.body)
    for node in classes[0].body:
        assert isinstance(node, (pyast.FunctionDef, pyast.Assign, pyast.AnnAssign, pyast.Expr)), pyast.dump(node)
        if isinstance(node, pyast.Expr):  # only the docstring
            assert isinstance(node.value, pyast.Constant) and isinstance(node.value.value, str)


def derived_models(model):
    out = [model, model.to_ito(), model.to_stratonovich()]
    if not model.is_ode:
        out += [model.reverse(), model.probability_flow()]
    return out


def evaluate_drift(module, backend: str, n: int):
    x = np.linspace(0.3, 0.9, 2 * n).reshape(2, n)
    if backend == "torch":
        import torch

        return module.drift_fn(torch.tensor(0.5, dtype=torch.float64), torch.tensor(x)).detach().numpy()
    import jax.numpy as jnp

    return np.asarray(module.drift_fn(0.5, jnp.asarray(x, dtype=jnp.float32)))


@pytest.mark.parametrize("name, text", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_specs_go_through_the_whole_pipeline(name, text):
    with sdelang.time_budget(60):
        model = sdelang.parse(text, path=f"{name}.sde")
        for m in derived_models(model):
            assert sdelang.parse(m.to_sde()) == m, m.to_sde()
            m.kfp()
            nets = {"score": lambda y, t: -y}
            for backend in BACKENDS:
                pytest.importorskip(backend)
                only_generated_definitions(sdelang.emit(m, backend))
                module = m.compile(backend, **({} if m.is_ode and not m.nets else nets))
                drift = evaluate_drift(module, backend, m.n_states)
                assert np.all(np.isfinite(drift))
        for density in model.densities:
            model.check_stationary(density.name)


# ----------------------------------------------------------------- collision-free renaming
COLLISIONS = {  # spec, the state's value, the drift there (hand-computed)
    "keyword-collision-lambda": (1.0, -1.5),
    "member-collision-drift": (1.0, -1.5),
    "underscore-collision": (2.0, -3.0),
    "time-name-collision": (2.0, -3.0),
    "builtin-collision": (1.0, -1.5),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(COLLISIONS))
def test_renamed_identifiers_keep_their_values(name, backend):
    """Python keywords, class members, a leading '_' and the generated code's own names are
    renamed without colliding with the model's other names: the drift keeps its number."""
    pytest.importorskip(backend)
    text = dict(ACCEPTED)[name]
    state, expected = COLLISIONS[name]
    module = sdelang.parse(text).compile(backend)
    if backend == "torch":
        import torch

        value = module.drift_fn(torch.tensor(0.0, dtype=torch.float64), torch.tensor([[state]], dtype=torch.float64))
        value = float(value[0, 0])
    else:
        import jax.numpy as jnp

        value = float(module.drift_fn(0.0, jnp.asarray([[state]]))[0, 0])
    assert value == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_overridden_colliding_parameters_reach_their_own_field(backend):
    pytest.importorskip(backend)
    model = sdelang.parse(dict(ACCEPTED)["keyword-collision-lambda"])
    module = model.compile(backend, **{"lambda": 4.0, "lambda_": 9.0})
    assert evaluate_drift(module, backend, 1)[:, 0] == pytest.approx([-4.0 * 0.3, -4.0 * 0.9], rel=1e-5)


# ----------------------------------------------------------------- real |x| and sign(x)
def test_abs_is_the_absolute_value_of_a_real_number():
    x = sympy.Symbol("x")
    assert sdelang.parse(dict(ACCEPTED)["abs-of-exp"]).drift[0] == -x * sympy.exp(x)  # |e^x| = e^x
    m = sdelang.parse(dict(ACCEPTED)["abs-noise-stratonovich"])
    for derived in (m.to_ito(), m.reverse(), m.probability_flow()):
        expr = derived.drift[0]
        assert not expr.has(sympy.re, sympy.im, sympy.Derivative), expr
    # Itô drift of -x dt + |x| ∘ dW: -x + ½ |x| sign(x) = -x + x/2
    ito = m.to_ito().drift[0]
    for value in (-1.7, -0.2, 0.4, 2.5):
        assert float(ito.subs(x, value)) == pytest.approx(-value / 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stratonovich_abs_noise_compiles_and_steps_with_its_ito_drift(backend):
    pytest.importorskip(backend)
    m = sdelang.parse(dict(ACCEPTED)["abs-noise-stratonovich"])
    module = m.compile(backend)
    x0 = np.array([[-1.2], [0.8]])
    if backend == "torch":
        import torch

        path = module.simulate(torch.tensor(x0), [0.0, 0.1], dt=0.1, seed=0).detach().numpy()
    else:
        import jax.numpy as jnp

        path = np.asarray(module.simulate(jnp.asarray(x0), [0.0, 0.1], dt=0.1, seed=0))
    assert np.all(np.isfinite(path))


def test_kfp_of_state_dependent_abs_noise_has_no_complex_parts():
    m = sdelang.parse("model A {\n state x\n dx = -x dt + sqrt(1 + abs(x)) dW\n}")
    rhs = m.kfp().rhs
    assert not rhs.has(sympy.re, sympy.im)
    with pytest.raises(DerivationError):
        m.marginal()
