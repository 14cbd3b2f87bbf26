"""Python keywords are ordinary names in the language (λ is `lambda` in half the SDE literature):
they parse, print back, and the backends rename them in generated code."""
import numpy as np
import pytest

import sdelang

SPEC = """model Decay {
    state x
    param lambda = 0.5 in (0, inf)
    param yield = 0.0
    dx = -lambda * (x - yield) dt + 0.1 dW
}"""


def test_keyword_names_parse_and_round_trip():
    m = sdelang.parse(SPEC)
    assert m.params.names == ("lambda", "yield")
    assert sdelang.parse(m.to_sde()) == m


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_keyword_names_compile_and_override(backend):
    pytest.importorskip(backend)
    m = sdelang.parse(SPEC)
    module = m.compile(backend, **{"lambda": 2.0, "yield": 1.0})
    x = np.array([[0.0], [3.0]])
    if backend == "torch":
        import torch

        drift = module.drift_fn(torch.tensor(0.0, dtype=torch.float64), torch.tensor(x)).numpy()
    else:
        import jax.numpy as jnp

        drift = np.asarray(module.drift_fn(0.0, jnp.asarray(x, dtype=jnp.float32)))
    np.testing.assert_allclose(drift, -2.0 * (x - 1.0), rtol=1e-6)
