"""Training a score network on both backends (sdelang.score.trainer with each backend's training
state): the EMA recursion, bit-identical checkpoint resume, a short run that learns, and sliced
score matching on a model without a kernel."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sdelang.check.two_sample import energy_distance_test
from sdelang.score.ema import ema_decay
from sdelang.toy_data import sample_toy

from score_backends import backend  # noqa: F401


def leaves(obj):
    """Every array of a nested state dict as numpy, in key order (torch tensors, JAX / numpy arrays,
    numbers), for bit-for-bit comparisons."""
    if isinstance(obj, dict):
        return [leaf for key in sorted(obj, key=str) for leaf in leaves(obj[key])]
    if isinstance(obj, (list, tuple)):
        return [leaf for item in obj for leaf in leaves(item)]
    if hasattr(obj, "detach"):
        return [obj.detach().cpu().numpy()]
    if hasattr(obj, "shape") or isinstance(obj, (int, float, bool)):
        return [np.asarray(obj)]
    return []


def assert_identical(a, b):
    la, lb = leaves(a), leaves(b)
    assert len(la) == len(lb) > 0
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y)


def test_ema_follows_the_documented_recursion(backend):
    """θ̄_k = d_k θ̄_{k-1} + (1 - d_k) θ_k with d_k = min(decay, (1 + k)/(10 + k))."""
    net = backend.mlp(2, hidden=4, depth=1)
    ema = backend.lib.EMA(net, decay=0.9)
    expected = backend.params(net)
    for k in range(1, 30):
        net = backend.shifted(net, 0.1 * k)
        ema = ema.update(net) or ema          # torch updates in place, JAX returns the new EMA
        d = min(0.9, (1 + k) / (10 + k))
        assert ema_decay(0.9, k) == d
        expected = [d * e + (1 - d) * p for e, p in zip(expected, backend.params(net))]
    assert int(ema.num_updates) == 29
    for got, want in zip(backend.params(ema.averaged(net)), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def trainer(backend, net_seed=0, seed=0):
    net = backend.mlp(2, hidden=16, depth=2, seed=net_seed)
    return backend.lib.ScoreTrainer(backend.compile("vp"), net, batch_size=64, seed=seed, steps_per_call=25,
                                    ema_decay=0.99)


def test_checkpoint_save_load_resume_reproduces_the_uninterrupted_run(backend, tmp_path):
    """Chunks of 25 steps and checkpoints every 20 (the chunks do not line up with the saves):
    30 steps, saved, then a trainer with other initial weights resumed to 60 equals 60 straight
    steps bit for bit (net, EMA, optimiser, random stream, losses)."""
    data = sample_toy("two_moons", 1000, seed=0).astype(np.float32)
    straight = trainer(backend)
    straight.fit(data, 60, progress=False)
    path = tmp_path / "checkpoint"
    trainer(backend).fit(data, 30, progress=False, checkpoint=path, checkpoint_every=20)
    resumed = trainer(backend, net_seed=123)           # all state comes from the file
    resumed.fit(data, 60, progress=False, checkpoint=path, checkpoint_every=20)
    assert resumed.step == straight.step == 60 and len(resumed.losses) == 60
    assert resumed.losses == straight.losses
    assert_identical(resumed.state_dict()["training"], straight.state_dict()["training"])
    assert backend.ops.load(path)["step"] == 60
    # a different seed draws different batches: the comparison above has power
    other = trainer(backend, seed=1)
    other.fit(data, 30, progress=False)
    assert other.losses != straight.losses[:30]
    # the facade restores the same trainer from the file (its own initial net is overwritten)
    facade = backend.lib.ScoreModel(backend.compile("vp"), net=backend.mlp(2, hidden=16, depth=2, seed=7)).load(path)
    assert facade.trainer.step == 60 and facade.losses == straight.losses
    for got, want in zip(backend.params(facade.ema_net), backend.params(straight.ema_net())):
        np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_short_training_reduces_the_loss_and_beats_an_untrained_network(backend):
    """400 Adam steps of the facade's default (EDM-preconditioned ScoreMLP, ε-parametrised) on eight Gaussians: the
    held-out DSM loss falls by > 20 % and the energy distance of EM samples to fresh data shrinks
    to < ½ of the untrained network's."""
    data = sample_toy("eight_gaussians", 5000, seed=0)
    held_out = backend.asarray(sample_toy("eight_gaussians", 4000, seed=9), backend.f32)
    fresh = sample_toy("eight_gaussians", 1000, seed=3)
    model = backend.lib.ScoreModel("examples/vp.sde", hidden=64, depth=2, seed=0)

    def held_out_loss():
        return float(backend.to_numpy(backend.lib.dsm_loss(model.module, held_out, seed=0, score=model.net)))

    def energy():
        samples = backend.to_numpy(model.sample(1000, "em", steps=100, seed=1).samples)
        return energy_distance_test(samples, fresh, 0, np.random.default_rng(0))[0]

    before, untrained = held_out_loss(), energy()
    model.fit(data, steps=400, batch_size=128, lr=3e-3, progress=False)
    assert len(model.losses) == 400 and all(math.isfinite(v) for v in model.losses)
    assert held_out_loss() < 0.8 * before
    assert energy() < 0.5 * untrained


def test_trainer_runs_sliced_score_matching_on_a_model_without_a_kernel(backend):
    """GBM has no Gaussian kernel: SSM simulates the forward SDE (``sim_steps`` as a loss option);
    the losses are finite and the weights move."""
    module = backend.compile("gbm")
    assert module.kernel_kind is None
    net = backend.mlp(1, hidden=8, depth=1)
    before = backend.params(net)
    trainer = backend.lib.ScoreTrainer(module, net, loss="ssm", weighting="none", batch_size=32, steps_per_call=5,
                                       loss_options={"sim_steps": 20})
    losses = trainer.fit(np.ones((200, 1), np.float32), 5, progress=False)
    assert len(losses) == 5 and all(math.isfinite(v) for v in losses)
    assert any(np.max(np.abs(a - b)) > 0 for a, b in zip(backend.params(trainer.net), before))
    with pytest.raises(ValueError):
        backend.lib.ScoreTrainer(module, net, loss="nosuch")


def test_each_loss_has_its_own_default_weighting_and_unknown_settings_are_type_errors(backend):
    """weighting=None is λ = σ_t² for DSM and none for SSM, so SSM trains on a model without a
    kernel with no weighting given (σ_t² would need one); a misspelt setting is a TypeError."""
    module = backend.compile("gbm")
    net = backend.mlp(1, hidden=8, depth=1)
    trainer = backend.lib.ScoreTrainer(module, net, loss="ssm", batch_size=16, steps_per_call=2,
                                       loss_options={"sim_steps": 10})
    assert trainer.config["weighting"] == "none"
    assert all(math.isfinite(v) for v in trainer.fit(np.ones((50, 1), np.float32), 2, progress=False))
    vp = backend.lib.ScoreTrainer(backend.compile("vp"), backend.mlp(2, hidden=8, depth=1))
    assert vp.config["weighting"] == "sigma2"
    with pytest.raises(NotImplementedError):
        backend.lib.ScoreTrainer(module, net, loss="ssm", weighting="sigma2").fit(np.ones((50, 1), np.float32), 1,
                                                                                progress=False)
    with pytest.raises(TypeError, match="batchsize"):
        backend.lib.ScoreTrainer(module, net, batchsize=16)
