"""Contract points of compiled modules shared by both backends (DESIGN.md section 4):
a network passed straight to ``reverse(score=net)`` / ``probability_flow(score=net)``, and a
generated file used on its own (``sdelang compile -o FILE``) still knows its reverse-time SDE."""
import importlib.util

import numpy as np
import pytest

import sdelang

# dx = -x dt + sqrt(2) dW on [0, 1]: reverse drift in s = 1 - t is -[f - g² s](x, 1 - s) = x + 2 s(x, 1 - s),
# probability flow f - ½ g² s = -x - s(x, t)
SPEC = """model OU2 {
    state x, y
    dx = -x dt + sqrt(2) dW1
    dy = -y dt + sqrt(2) dW2
}"""
POINT = np.array([[0.3, -1.2], [2.0, 0.5]])


def torch_net(x, t):
    return -2.0 * x


def as_numpy(v):
    return np.asarray(v.detach().numpy() if hasattr(v, "detach") else v)


def drift_at(module, backend, s):
    if backend == "torch":
        import torch

        return as_numpy(module.drift_fn(torch.tensor(s, dtype=torch.float64), torch.tensor(POINT)))
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return as_numpy(module.drift_fn(s, jnp.asarray(POINT)))


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_network_passed_as_score_drives_the_derived_modules(backend):
    pytest.importorskip(backend)
    module = sdelang.parse(SPEC).compile(backend)
    reverse = module.reverse(score=torch_net)
    np.testing.assert_allclose(drift_at(reverse, backend, 0.25), POINT + 2 * (-2.0 * POINT), rtol=1e-12)
    flow = module.probability_flow(score=torch_net)
    np.testing.assert_allclose(drift_at(flow, backend, 0.25), -POINT + 2.0 * POINT, rtol=1e-12)
    # the module's own (unattached) score is untouched: its reverse still asks for a network
    with pytest.raises(Exception, match="score"):
        drift_at(module.reverse(), backend, 0.25)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_standalone_generated_file_builds_its_reverse_sde(backend, tmp_path):
    pytest.importorskip(backend)
    path = tmp_path / f"ou2_{backend}.py"
    path.write_text(sdelang.emit(sdelang.parse(SPEC), backend))
    spec = importlib.util.spec_from_file_location(f"ou2_{backend}", path)
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    module = generated.OU2(score=torch_net)
    np.testing.assert_allclose(drift_at(module.reverse(), backend, 0.5), POINT - 4.0 * POINT, rtol=1e-12)
