"""The fast paths of ``simulate`` (issue 12): block-drawn torch noise, the JAX uniform-schedule
scan, and the torch intra-op threads knob. Each fast path must give the numbers of the plain
algorithm it replaces (timings live in benchmarks/bench_simulate.py, never here)."""
import math
import pathlib

import numpy as np
import pytest
import torch

import sdelang
from sdelang.step_plan import step_plan
from sdelang_torch import simulate as torch_simulate
from sdelang_torch.threads import ENV_VAR, intra_op_threads, threads_for

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def per_step_loop(module, x0, ts, dt, seed):
    """The plain algorithm: one torch.randn per step, scaled by √h."""
    gen = torch.Generator().manual_seed(seed)
    out, y = [x0], x0
    for t_start, h, k in step_plan(ts, dt):
        for j in range(k):
            dW = torch.randn(module._noise_shape(x0), generator=gen, dtype=x0.dtype).mul_(math.sqrt(h))
            y = module._step(t_start + j * h, y, h, dW)
        out.append(y)
    return torch.stack(out)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("ts", [[0.0, 0.5], [0.0, 0.1, 0.35, 1.0]])
def test_torch_block_noise_is_the_per_step_stream(dtype, ts, monkeypatch):
    module = sdelang.load(EXAMPLES / "langevin_banana.sde").compile("torch")
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=dtype)
    expected = per_step_loop(module, x0, ts, 0.01, seed=3)
    assert torch.equal(module.simulate(x0, ts, 0.01, seed=3), expected)
    monkeypatch.setattr(torch_simulate, "NOISE_BLOCK_ELEMENTS", 300)  # several blocks per interval
    assert torch.equal(module.simulate(x0, ts, 0.01, seed=3), expected)


def test_torch_odd_batch_is_reproducible_and_seeded():
    module = sdelang.load(EXAMPLES / "langevin_banana.sde").compile("torch")
    x0 = torch.zeros(3, 2)
    a, b, c = (module.simulate(x0, [0.0, 1.0], 0.01, seed=s) for s in (5, 5, 6))
    assert torch.equal(a, b) and not torch.allclose(a[-1], c[-1])


def test_torch_block_noise_keeps_gradients():
    module = sdelang.load(EXAMPLES / "gbm.sde").compile("torch")
    x0 = torch.ones(16, 1, dtype=torch.float64, requires_grad=True)
    out = module.simulate(x0, [0.0, 1.0], 0.1, seed=0)
    out[-1].sum().backward()  # GBM is linear in x0: d x_T / d x0 = x_T / x0
    np.testing.assert_allclose(x0.grad.numpy(), out[-1].detach().numpy(), rtol=1e-12)


def test_threads_knob(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert threads_for(100) == 1 and threads_for(10**7) is None and threads_for(None) is None
    with intra_op_threads(100) as n:
        assert n == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    monkeypatch.setenv(ENV_VAR, "torch")
    assert threads_for(100) is None
    monkeypatch.setenv(ENV_VAR, "3")
    with pytest.raises(RuntimeError):
        with intra_op_threads(10**7):
            assert torch.get_num_threads() == 3
            raise RuntimeError("restored even when the body raises")
    assert torch.get_num_threads() == before
    monkeypatch.setenv(ENV_VAR, "zero")
    with pytest.raises(ValueError, match=ENV_VAR):
        threads_for(1)


def test_simulate_restores_torch_threads(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    before = torch.get_num_threads()
    module = sdelang.load(EXAMPLES / "ou.sde").compile("torch")
    module.simulate(torch.zeros(8, 1), [0.0, 0.1], 0.01)
    assert torch.get_num_threads() == before


# ----------------------------------------------------------------------------- JAX
@pytest.mark.slow
@pytest.mark.jax
@pytest.mark.parametrize("ts", [[0.0, 0.5], list(np.linspace(0.0, 1.0, 11)), [0.2, 0.7, 1.2]])
def test_jax_uniform_path_equals_padded_grid(ts):
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    from sdelang_jax import simulate as jax_simulate

    module = sdelang.load(EXAMPLES / "langevin_banana.sde").compile("jax")
    x0 = jax.random.normal(jax.random.PRNGKey(1), (32, 2), jnp.float32)
    times, sizes = jax_simulate.step_schedule(ts, 0.01)
    assert np.all(sizes > 0)  # a uniform schedule: simulate takes the unpadded path
    padded = jax_simulate._euler_maruyama_padded(module, x0, jax_simulate.as_key(4), times.astype(np.float32),
                                                 sizes.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(module.simulate(x0, ts, 0.01, seed=4)), np.asarray(padded))
    key = jax.random.PRNGKey(4)
    np.testing.assert_array_equal(np.asarray(module.simulate(x0, ts, 0.01, seed=key)), np.asarray(padded))
    typed = module.simulate(x0, ts, 0.01, seed=jax.random.key(4))
    assert typed.shape == (len(ts), 32, 2)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_both_backends_take_the_same_schedule_and_accept_equal_times(backend):
    """One step plan for both backends (sdelang.step_plan): a repeated time is a zero interval that
    leaves the state unchanged, decreasing times are refused, and a linspace grid gains no sliver."""
    assert [k for _, _, k in step_plan([0.0, 0.5, 0.5, 1.0], 0.1)] == [5, 0, 5]
    assert [k for _, _, k in step_plan(np.linspace(0, 1, 11), 0.1)] == [1] * 10
    module = sdelang.load("examples/ou.sde").compile(backend)
    x0 = np.full((4, 1), 2.0, np.float32)
    if backend == "torch":
        x0 = torch.as_tensor(x0)
    path = np.asarray(module.simulate(x0, [0.0, 0.5, 0.5, 1.0], dt=0.1, seed=0))
    assert path.shape == (4, 4, 1)
    np.testing.assert_array_equal(path[1], path[2])
    assert not np.array_equal(path[0], path[1])
    with pytest.raises(ValueError, match="non-decreasing"):
        module.simulate(x0, [0.0, 1.0, 0.5], dt=0.1, seed=0)
