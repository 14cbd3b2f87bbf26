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
