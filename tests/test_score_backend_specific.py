"""The few score-layer checks that only make sense on one backend: gradients through torch's
log_prob (autograd through torchdiffeq), JAX's gradients of DSM through ``eqx.filter_grad``."""
from __future__ import annotations

import numpy as np
import pytest

from score_backends import GAUSSIAN, T_MIN, backend_or_skip, mixture


@pytest.fixture(scope="module")
def torch_backend():
    return backend_or_skip("torch")


@pytest.fixture(scope="module")
def jax_backend(request):
    return backend_or_skip("jax", request)


@pytest.mark.torch
def test_torch_log_prob_gradient_flows_to_the_score_net(torch_backend):
    torch = torch_backend.torch
    exact = mixture("torch", "vp", GAUSSIAN)

    class Scaled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))

        def forward(self, x, t):
            return self.scale * exact(x, t)

    net = Scaled()
    module = torch_backend.compile("vp", score=net)
    x = torch_backend.asarray(exact.sample(T_MIN, 8, seed=5))
    torch_backend.lib.log_prob(module, x, rtol=1e-6, atol=1e-6).sum().backward()
    assert net.scale.grad is not None and float(net.scale.grad.abs()) > 0


@pytest.mark.jax
def test_jax_dsm_gradient_of_the_default_mlp_is_finite_and_nonzero(jax_backend):
    import equinox as eqx
    import jax

    B = jax_backend
    module = B.compile("vp")
    net = B.mlp(2, hidden=16, dtype=B.f64)
    x0 = B.asarray(np.random.default_rng(1).normal(size=(32, 2)))
    grads = eqx.filter_grad(lambda n: B.lib.dsm_loss(module, x0, seed=0, score=n))(net)
    leaves = jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array))
    assert leaves and all(bool(np.all(np.isfinite(np.asarray(g)))) for g in leaves)
    assert any(float(np.max(np.abs(np.asarray(g)))) > 0 for g in leaves)


@pytest.mark.jax
def test_jax_derived_module_is_reused_only_while_it_would_be_the_same_module(jax_backend):
    """``probability_flow(net)`` / ``reverse()`` hand back the last module built while every field
    is the same object (no rebuild per sampler call), and a new one as soon as a network or a
    parameter differs: the reused module never carries another module's net or β."""
    B = jax_backend
    net_a, net_b = B.mlp(2, seed=1), B.mlp(2, seed=2)
    vp = B.compile("vp")
    flow_a = vp.probability_flow(net_a)
    assert vp.probability_flow(net_a) is flow_a
    flow_b = vp.probability_flow(net_b)
    assert flow_b is not flow_a and flow_b.score is net_b and vp.probability_flow(net_a).score is net_a
    steeper = B.compile("vp", beta_max=30.0)
    flow_c = steeper.probability_flow(net_a)
    assert flow_c is not flow_a and float(flow_c.beta_max) == 30.0
    x, t = B.asarray(np.ones((3, 2))), 0.5
    assert np.allclose(B.to_numpy(flow_c.drift_fn(t, x)), B.to_numpy(steeper.with_score(net_a).probability_flow().drift_fn(t, x)))
    assert vp.with_score(net_a).reverse().score is net_a and vp.with_score(net_b).reverse().score is net_b


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_step_table_is_what_a_loop_indexes_without_a_dispatch(name, request):
    """torch: Python floats (indexing a tensor per step costs a dispatch per op); JAX: the array
    itself (the loop is traced, and the table stays in the compiled program)."""
    B = backend_or_skip(name, request)
    table = B.asarray(np.array([0.5, -1.25, 3.0]))
    out = B.ops.step_table(table)
    assert np.allclose(np.asarray(out, dtype=float), [0.5, -1.25, 3.0])
    if name == "torch":
        assert isinstance(out, list) and all(type(v) is float for v in out)
    else:
        assert out is table
