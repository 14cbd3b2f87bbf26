"""EDM preconditioning derived from the kernel (sdelang.score.precondition), checked against closed
forms that do not come from our code: the VP / sub-VP / VE kernels written out by hand, EDM's
c_skip, c_out, c_in (Karras et al. 2022, Table 1), and Tweedie's formula for Gaussian data, whose
optimal denoiser is linear (so the "v" preconditioner with a zero net IS the exact score)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from score_backends import EXAMPLES, backend  # noqa: F401  (fixture)

B0, B1 = 0.1, 20.0
S_MIN, S_MAX = 0.01, 50.0
DATA_STD = 0.7


def kernel(name, t):
    """(a_t, σ_t) of the three kernels by hand (Song et al. 2021, App. B)."""
    B = B0 * t + (B1 - B0) * t ** 2 / 2
    if name == "vp":
        return np.exp(-B / 2), np.sqrt(1 - np.exp(-B))
    if name == "subvp":
        return np.exp(-B / 2), 1 - np.exp(-B)
    return np.ones_like(t), S_MIN * np.sqrt((S_MAX / S_MIN) ** (2 * t) - 1)


def edm(parametrization, sigma, sd):
    """(c_skip, c_out) of EDM's Table 1 / the ε, x0 parametrisations, and c_in."""
    c_in = 1 / np.sqrt(sigma ** 2 + sd ** 2)
    if parametrization == "v":
        return sd ** 2 / (sigma ** 2 + sd ** 2), sigma * sd * c_in, c_in
    if parametrization == "eps":
        return np.ones_like(sigma), -sigma, c_in
    return np.zeros_like(sigma), np.ones_like(sigma), c_in


class Recorder:
    """F(z, c) = k z + c0 (a fixed linear map, no parameters), remembering its last inputs."""

    def __init__(self, k=0.0, c0=0.0):
        self.k, self.c0, self.inputs = k, c0, None

    def __call__(self, z, c):
        self.inputs = (z, c)
        return self.k * z + self.c0


def wrapper(B, name, net, parametrization, data_std=DATA_STD):
    module = B.compile(name, d=3) if name != "ve" else B.compile(EXAMPLES / "ve.sde", d=3)
    if B.name == "torch":
        import torch
        from sdelang_torch.preconditioning import KernelPreconditionedScore

        class Net(torch.nn.Module):
            def forward(self, z, c):
                return net(z, c)

        return KernelPreconditionedScore(Net(), module, data_std=data_std, parametrization=parametrization)
    import equinox as eqx
    import jax.numpy as jnp
    from sdelang_jax.preconditioning import KernelPreconditionedScore

    class Net(eqx.Module):
        w: jnp.ndarray

        def __call__(self, z, c):
            return net(z, c)

    return KernelPreconditionedScore(Net(jnp.zeros(1)), module, data_std=data_std, parametrization=parametrization)


def points(B, seed=0):
    rng = np.random.default_rng(seed)
    t = np.array([2e-3, 0.05, 0.3, 0.7, 1.0])
    x = rng.normal(size=(5, 3)) * 2
    return t, x, B.asarray(t), B.asarray(x)


@pytest.mark.parametrize("name", ["vp", "subvp", "ve"])
def test_v_preconditioner_with_a_zero_net_is_the_exact_score_of_gaussian_data(backend, name):
    """For data N(0, σ_d² I) the optimal denoiser is D = σ_d² / (σ̃² + σ_d²) x̃ = c_skip x̃, so with F ≡ 0
    the score must be that of p_t = N(0, (a² σ_d² + σ²) I): -x / (a² σ_d² + σ²)."""
    score = wrapper(backend, name, Recorder(), "v")
    t, x, tt, xx = points(backend)
    a, s = kernel(name, t)
    expected = -x / (a[:, None] ** 2 * DATA_STD ** 2 + s[:, None] ** 2)
    np.testing.assert_allclose(backend.to_numpy(score(xx, tt)), expected, rtol=1e-9)


@pytest.mark.parametrize("parametrization", ["v", "eps", "x0", "score"])
def test_the_net_sees_c_in_x_and_the_score_follows_from_tweedie(backend, parametrization):
    """F(z) = k z + c0: the net's input is c_in x̃ = x / √(a² σ_d² + σ²), and the score is
    a (D - x̃) / σ² with D = c_skip x̃ + c_out F (EDM's table), or F itself for "score"."""
    k, c0 = 0.3, -0.2
    net = Recorder(k, c0)
    score = wrapper(backend, "vp", net, parametrization)
    t, x, tt, xx = points(backend, seed=1)
    got = backend.to_numpy(score(xx, tt))
    a, s = (v[:, None] for v in kernel("vp", t))
    sigma = s / a
    x_tilde = x / a
    c_in = 1 / np.sqrt(sigma ** 2 + DATA_STD ** 2)
    np.testing.assert_allclose(backend.to_numpy(net.inputs[0]), c_in * x_tilde, rtol=1e-9)
    F = k * c_in * x_tilde + c0
    if parametrization == "score":
        np.testing.assert_allclose(got, F, rtol=1e-9)
        return
    c_skip, c_out, _ = edm(parametrization, sigma, DATA_STD)
    D = c_skip * x_tilde + c_out * F
    np.testing.assert_allclose(got, a * (D - x_tilde) / s ** 2, rtol=1e-8, atol=1e-12)


def test_noise_conditioning_maps_the_log_noise_level_onto_the_time_interval(backend):
    """c_noise(t) = (ln σ̃_t - ln σ̃_lo) / (ln σ̃_hi - ln σ̃_lo) on [0, 1] (t_lo = 1e-3, hi = 1), by hand."""
    net = Recorder()
    score = wrapper(backend, "vp", net, "v")
    t, x, tt, xx = points(backend)
    score(xx, tt)
    a, s = kernel("vp", t)
    lo_a, lo_s = kernel("vp", np.array([1e-3]))
    hi_a, hi_s = kernel("vp", np.array([1.0]))
    log = lambda a_, s_: np.log(s_ / a_)
    expected = (log(a, s) - log(lo_a, lo_s)) / (log(hi_a, hi_s) - log(lo_a, lo_s))
    np.testing.assert_allclose(backend.to_numpy(net.inputs[1]), expected, rtol=1e-9)


@pytest.mark.parametrize("parametrization", ["v", "eps", "x0", "score"])
def test_preconditioned_weighting_is_the_nets_own_squared_error(backend, parametrization):
    """Λ = "preconditioned": w (σ s + ε)² = (F - F_target)², F_target = (x0 - c_skip x̃) / c_out
    (the target of F itself for "score": the kernel score -ε/σ)."""
    net = Recorder(0.4, 0.1)
    score = wrapper(backend, "vp", net, parametrization)
    t, _, tt, _ = points(backend)
    rng = np.random.default_rng(3)
    x0, eps = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    a, s = (v[:, None] for v in kernel("vp", t))
    xt = a * x0 + s * eps
    xx = backend.asarray(xt)
    residual = backend.to_numpy(score.loss_weight(xx, tt)) * (s * backend.to_numpy(score(xx, tt)) + eps) ** 2
    F = backend.to_numpy(net.inputs[0]) * 0.4 + 0.1
    sigma = s / a
    if parametrization == "score":
        target = -eps / s
    else:
        c_skip, c_out, _ = edm(parametrization, sigma, DATA_STD)
        target = (x0 - c_skip * xt / a) / c_out
    np.testing.assert_allclose(residual, (F - target) ** 2, rtol=1e-8, atol=1e-12)


def test_default_net_follows_the_data_shape(backend):
    """Images (N, C, H, W) with even H, W get the U-Net, flat data and odd images the MLP; both
    preconditioned, with the weighting that follows; samples come back in the data's shape."""
    lib = backend.lib
    rng = np.random.default_rng(0)
    cases = {(1, 8, 8): lib.UNet, (64,): lib.ScoreMLP, (1, 7, 7): lib.ScoreMLP}
    for shape, kind in cases.items():
        d = math.prod(shape)
        model = lib.ScoreModel(EXAMPLES / "vp.sde", d=d, hidden=16, depth=1)
        assert model.weighting == "preconditioned"
        model.fit(rng.normal(size=(32, *shape)).astype(np.float32), steps=1, batch_size=8, progress=False)
        inner = model.net.net
        assert isinstance(inner, kind), (shape, type(inner))
        assert model.sample(3, "ddim", steps=2, progress=False).samples.shape == (3, *shape)


def test_unknown_parametrization_and_preconditioning_without_a_diagonal_kernel_are_refused(backend):
    with pytest.raises(ValueError, match="parametrization must be one of"):
        backend.lib.ScoreModel(EXAMPLES / "vp.sde", parametrization="velocity")
    with pytest.raises(ValueError, match="weighting 'preconditioned' needs"):
        backend.lib.dsm_loss(backend.compile("vp"), backend.asarray(np.zeros((4, 2))), weighting="preconditioned",
                             score=backend.mlp(2))
