"""The U-Net score networks (sdelang_torch.UNet, sdelang_jax.UNet): flat (batch, C·H·W) in and out,
clear errors for shapes they cannot take, the same parameters and the same function in both
backends (torch weights copied into the JAX module agree in float64), a time input that matters,
and a net that trains."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from score_backends import backend, backend_or_skip, both  # noqa: F401

SMALL = dict(channels=8, groups=4)
SETTINGS = [
    ((1, 8, 8), {}),                                                     # the defaults, 8×8 digits
    ((3, 8, 16), dict(SMALL, channel_mults=(1, 2, 2), blocks=2, embed_dim=16, frequencies=4)),
    ((3, 16, 16), dict(SMALL, channel_mults=(1, 2, 2))),                 # three levels
    ((2, 4, 6), dict(SMALL, channel_mults=(1, 3))),
    ((1, 5, 7), dict(SMALL, channel_mults=(2,))),                        # one level: any H, W
]


def make(B, shape, seed=0, dtype=None, **kw):
    if B.name == "torch":
        return B.lib.UNet(shape, seed=seed, dtype=dtype, **kw)
    return B.lib.UNet(shape, key=B.jax.random.PRNGKey(seed), dtype=dtype, **kw)


def n_params(B, net):
    return sum(p.size for p in B.params(net))


def perturbed(B, net, scale=0.2, seed=1):
    """``net`` with N(0, scale²) noise on every parameter (so the zero head, the GroupNorm ones and
    zeros and every bias matter in comparisons); in place for torch."""
    rng = np.random.default_rng(seed)
    if B.name == "torch":
        with B.torch.no_grad():
            for p in net.parameters():
                p.add_(B.torch.as_tensor(scale * rng.standard_normal(p.shape), dtype=p.dtype))
        return net
    import equinox as eqx

    params, static = eqx.partition(net, eqx.is_inexact_array)
    params = B.jax.tree_util.tree_map(lambda p: p + scale * rng.standard_normal(p.shape).astype(p.dtype), params)
    return eqx.combine(params, static)


@functools.lru_cache(maxsize=None)
def _jitted():
    import equinox as eqx

    return eqx.filter_jit(lambda net, x, t: net(x, t))


def call(B, net, x, t):
    """net(x, t) as numpy (JAX through one filter_jit, t always an array so that its value is no
    compile-time constant)."""
    if B.name == "torch":
        with B.torch.no_grad():
            return B.to_numpy(net(x, t))
    return np.asarray(_jitted()(net, x, B.jnp.asarray(t, B.f32)))


def out_shape(B, net, x, t):
    """The shape of net(x, t) (JAX by tracing only, no compilation)."""
    if B.name == "torch":
        with B.torch.no_grad():
            return tuple(net(x, t).shape)
    import equinox as eqx

    return tuple(eqx.filter_eval_shape(net, x, t).shape)


# ------------------------------------------------------------------------------ torch -> JAX
def jax_names(jnet):
    """(dotted names like torch's named_parameters, paths) of the JAX net's array leaves."""
    import equinox as eqx
    import jax

    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(jnet, eqx.is_inexact_array))[0]
    names, paths = [], []
    for path, _ in leaves:
        keys = [k.name if hasattr(k, "name") else k.idx for k in path]
        names.append(".".join(str(k) for k in keys))
        paths.append(keys)
    return names, paths


def torch_into_jax(tnet, jnet):
    """``jnet`` with the parameters of ``tnet`` under the same names (conv biases reshaped from
    (out,) to equinox's (out, 1, 1)), through ``eqx.tree_at``; every parameter used once."""
    import equinox as eqx
    import jax.numpy as jnp

    source = {name: p.detach().cpu().numpy() for name, p in tnet.named_parameters()}
    names, paths = jax_names(jnet)
    assert sorted(names) == sorted(source), set(names) ^ set(source)

    def get(tree, keys):
        for k in keys:
            tree = tree[k] if isinstance(k, int) else getattr(tree, k)
        return tree

    old = [get(jnet, keys) for keys in paths]
    new = []
    for name, leaf in zip(names, old):
        value = source[name]
        assert value.size == leaf.size, (name, value.shape, leaf.shape)
        new.append(jnp.asarray(value.reshape(leaf.shape), leaf.dtype))
    return eqx.tree_at(lambda m: [get(m, keys) for keys in paths], jnet, new)


# ------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("shape, kw", SETTINGS)
def test_flat_batches_in_and_out(backend, shape, kw):
    """(*batch, C·H·W) in, the same out, for t a scalar or of the batch shape."""
    B = backend
    net = make(B, shape, **kw)
    n = int(np.prod(shape))
    x = B.asarray(np.zeros((5, n)), B.f32)
    assert out_shape(B, net, x, 0.3) == out_shape(B, net, x, B.asarray(np.ones(5), B.f32)) == (5, n)
    assert out_shape(B, net, x[0], 0.3) == (n,)
    assert out_shape(B, net, B.asarray(np.zeros((2, 5, n)), B.f32), B.asarray(np.ones((2, 5)), B.f32)) == (2, 5, n)


def test_batch_rows_are_the_net_on_each_sample(backend):
    """Row i of net(x, t) depends on x_i and t_i only; a scalar t is t for every row; float64
    inputs come back float64 (computed in the net's float32)."""
    B = backend
    shape, kw = SETTINGS[3]                     # non-square, two channels
    net = perturbed(B, make(B, shape, **kw))
    rng = np.random.default_rng(0)
    x_np, t_np = rng.standard_normal((5, 48)), rng.uniform(size=5)
    out = call(B, net, B.asarray(x_np, B.f32), B.asarray(t_np, B.f32))
    assert out.dtype == np.float32 and np.all(np.isfinite(out)) and np.abs(out).max() > 1e-2
    scale = np.abs(out).max()
    x2, t2 = x_np.copy(), t_np.copy()
    x2[2] += 1.0
    t2[2] = 1 - t2[2]
    moved = call(B, net, B.asarray(x2, B.f32), B.asarray(t2, B.f32))
    rest = [0, 1, 3, 4]
    np.testing.assert_allclose(moved[rest], out[rest], rtol=1e-5, atol=1e-6 * scale)
    assert np.abs(moved[2] - out[2]).max() > 1e-2 * scale
    np.testing.assert_allclose(call(B, net, B.asarray(x_np, B.f32), 0.25),
                               call(B, net, B.asarray(x_np, B.f32), B.asarray(np.full(5, 0.25), B.f32)),
                               rtol=1e-5, atol=1e-6 * scale)
    if B.name == "torch":       # (JAX: the same cast, seen by tracing)
        assert call(B, net, B.asarray(x_np, B.f64), 0.5).dtype == np.float64
    else:
        import equinox as eqx

        assert eqx.filter_eval_shape(net, B.asarray(x_np, B.f64), 0.5).dtype == np.float64


def test_invalid_settings_raise(backend):
    B = backend
    with pytest.raises(ValueError, match="divisible"):
        make(B, (1, 7, 8))                                     # two levels need even H, W
    with pytest.raises(ValueError, match="divisible"):
        make(B, (1, 12, 12), channel_mults=(1, 2, 2, 2))        # four levels need multiples of 8
    for shape in [(8, 8), (1, 0, 8), (1, 2, 8, 8), 64]:
        with pytest.raises(ValueError, match="shape"):
            make(B, shape)
    with pytest.raises(ValueError, match="groups"):
        make(B, (1, 8, 8), channels=12, groups=8)
    with pytest.raises(ValueError, match="channel_mults"):
        make(B, (1, 8, 8), channel_mults=())
    with pytest.raises(ValueError, match="blocks"):
        make(B, (1, 8, 8), blocks=0)
    net = make(B, (1, 8, 8), **SMALL)
    with pytest.raises(ValueError, match=r"\(\*batch, 64\)"):
        net(B.asarray(np.zeros((4, 63)), B.f32), 0.5)


@pytest.mark.torch
@pytest.mark.jax
def test_same_parameters_in_both_backends(both):
    """Equal counts and the same names and sizes (torch_into_jax asserts them) for each setting;
    the default (1, 8, 8) net has 408,673 parameters; a seed (a key) gives the same net again."""
    for shape, kw in SETTINGS:
        tnet, jnet = (make(B, shape, **kw) for B in both)
        assert n_params(both[0], tnet) == n_params(both[1], jnet), (shape, kw)
        torch_into_jax(tnet, jnet)
    assert n_params(both[0], make(both[0], (1, 8, 8))) == 408_673
    for B in both:
        first, again, other = (B.params(make(B, (1, 8, 8), seed=s, **SMALL)) for s in (0, 0, 1))
        assert all(np.array_equal(a, b) for a, b in zip(first, again))
        assert not all(np.array_equal(a, b) for a, b in zip(first, other))


@pytest.mark.torch
@pytest.mark.jax
@pytest.mark.parametrize("shape, kw, grads", [(*SETTINGS[0], True), (*SETTINGS[1], False)])
def test_same_function_in_both_backends(both, shape, kw, grads):
    """torch's weights (perturbed, in float64) copied into the JAX module: the same outputs to 1e-9
    on random inputs and per-sample times, and for the default net the same input gradients
    ∇_x Σ v·net(x, t) and parameter gradients (the other setting: outputs only, as each compiled
    JAX gradient costs seconds)."""
    import equinox as eqx
    import jax

    torch_b, jax_b = both
    tnet = perturbed(torch_b, make(torch_b, shape, dtype=torch_b.f64, **kw))
    jnet = torch_into_jax(tnet, make(jax_b, shape, dtype=jax_b.f64, **kw))
    n = int(np.prod(shape))
    rng = np.random.default_rng(3)
    x, v, t = rng.standard_normal((4, n)), rng.standard_normal((4, n)), rng.uniform(size=4)

    tx = torch_b.asarray(x).requires_grad_(True)
    out_t = tnet(tx, torch_b.asarray(t))
    expected = {"out": torch_b.to_numpy(out_t)}
    assert np.abs(expected["out"]).max() > 1e-2
    if grads:
        names = [name for name, _ in tnet.named_parameters()]
        grads_t = torch_b.torch.autograd.grad((out_t * torch_b.asarray(v)).sum(), [tx, *tnet.parameters()])
        expected.update({k: torch_b.to_numpy(g) for k, g in zip(["x", *names], grads_t)})

    @eqx.filter_jit
    def out_and_grads(net, x, t, v):
        if not grads:
            return net(x, t), None
        out, vjp = eqx.filter_vjp(lambda net, x: net(x, t), net, x)
        return out, vjp(v)

    out_j, vjps = out_and_grads(jnet, *(jax_b.asarray(a) for a in (x, t, v)))
    got = {"out": np.asarray(out_j)}
    if grads:
        gnet, gx = vjps
        got["x"] = np.asarray(gx)
        leaves = jax.tree_util.tree_leaves(eqx.filter(gnet, eqx.is_inexact_array))
        for name, g in zip(jax_names(jnet)[0], leaves):
            got[name] = np.asarray(g).reshape(expected[name].shape)
    assert sorted(got) == sorted(expected)
    for name in expected:
        scale = max(np.abs(expected[name]).max(), 1e-3)
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-9, atol=1e-9 * scale, err_msg=name)


def test_time_matters(backend):
    """A fresh net is 0 (zero head); once its weights move, t = 0 and t = 1 give different outputs."""
    B = backend
    x = B.asarray(np.random.default_rng(0).standard_normal((8, 64)), B.f32)
    assert np.all(call(B, make(B, (1, 8, 8)), x, 0.5) == 0)
    net = perturbed(B, make(B, (1, 8, 8)))
    at0, at1 = call(B, net, x, 0.0), call(B, net, x, 1.0)
    assert np.abs(at1 - at0).max() > 1e-2 * np.abs(at0).max()


@pytest.mark.torch
def test_trains():
    """A few torch Adam steps on the toy regression net(x, t) ≈ -x / (0.1 + t) lower the loss (the
    JAX net has the same parameter gradients: test_same_function_in_both_backends)."""
    B = backend_or_skip("torch")
    torch = B.torch
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.standard_normal((32, 64)), dtype=torch.float32)
    t = torch.as_tensor(rng.uniform(size=32), dtype=torch.float32)
    y = -x / (0.1 + t[:, None])
    net = make(B, (1, 8, 8), **SMALL)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = ((net(x, t) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.8 * losses[0], losses
