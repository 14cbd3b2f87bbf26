"""The trainer's options on both backends (sdelang.score.trainer, sdelang.score.lr_schedule and each
backend's training state): the learning-rate schedule against its closed form, Adam / AdamW against
a hand computation and torch against JAX, the lr each step uses, bf16 autocast (torch) and the bf16
dtype policy (JAX), the validation loss, a bit-for-bit resume with every option on, and the errors
for unknown or bad settings."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sdelang.score.lr_schedule import lr_factor
from sdelang.score.trainer import training_config

from score_backends import backend, both  # noqa: F401
from test_score_training import assert_identical

BF16_EPS = 2.0 ** -8          # bfloat16's relative precision (8 significand bits)


def closed_form(k, schedule, W, S, r=0.0):
    """f(k) written out independently of lr_schedule.py: warm-up (k+1)/W, then the decay."""
    warm = min(1.0, (k + 1) / W) if W else 1.0
    if schedule == "constant":
        return warm
    p = min(1.0, max(0.0, (k - W) / (S - W)))
    d = 1 - p if schedule == "linear" else 0.5 * (1 + math.cos(math.pi * p))
    return warm * (r + (1 - r) * d)


def gaussian_data(n, seed=0):
    return (np.random.default_rng(seed).normal(size=(n, 2)) * 0.5 + [1.0, -0.5]).astype(np.float32)


# ------------------------------------------------------------------------------ the schedule
def test_schedule_matches_its_closed_form_in_python_and_jnp():
    """Warm-up endpoints 1/W and 1, the cosine midpoint ½, the linear end r (and the floor after
    it), a constant schedule 1; the jnp evaluation (a traced k) equals the Python one."""
    W, S = 4, 24
    assert lr_factor(0, "cosine", W, S) == 1 / W
    assert lr_factor(W - 1, "cosine", W, S) == 1.0 == lr_factor(W, "linear", W, S)
    assert lr_factor(W + (S - W) // 2, "cosine", W, S) == pytest.approx(0.5, abs=1e-15)
    assert lr_factor(W + (S - W) // 2, "cosine", W, S, 0.2) == pytest.approx(0.6, abs=1e-15)
    assert lr_factor(S, "linear", W, S, 0.1) == pytest.approx(0.1, abs=1e-15)
    assert lr_factor(S + 50, "cosine", W, S, 0.1) == pytest.approx(0.1, abs=1e-15)
    assert lr_factor(S - 1, "linear", W, S) == pytest.approx(1 / (S - W))
    assert all(lr_factor(k, "constant") == 1.0 for k in range(5))
    assert [lr_factor(k, "constant", 3) for k in range(4)] == [1 / 3, 2 / 3, 1.0, 1.0]
    jnp = pytest.importorskip("jax.numpy")
    for schedule in ("constant", "linear", "cosine"):
        for r in (0.0, 0.3):
            ks = np.arange(S + 5)
            want = [closed_form(int(k), schedule, W, S, r) for k in ks]
            np.testing.assert_allclose([lr_factor(int(k), schedule, W, S, r) for k in ks], want, rtol=1e-14, atol=1e-15)
            got = lr_factor(jnp.asarray(ks, jnp.float32), schedule, W, S, r, minimum=jnp.minimum,
                            maximum=jnp.maximum, cos=jnp.cos)
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="schedule_steps"):
        lr_factor(0, "cosine", 10, 10)


# ------------------------------------------------------------------------------ the optimisers
def reference_adam(theta, grads, lrs, wd=0.0, decoupled=False, b1=0.9, b2=0.999, eps=1e-8):
    """Adam / AdamW by hand (float64): the parameters after each step."""
    theta = np.array(theta, np.float64)
    m = v = np.zeros_like(theta)
    out = []
    for k, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g = np.array(g, np.float64) + (0 if decoupled else wd * theta)
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        step = lr * (m / (1 - b1 ** k)) / (np.sqrt(v / (1 - b2 ** k)) + eps)
        theta = theta - step - (lr * wd * theta if decoupled else 0)
        out.append(theta.copy())
    return out


SETTINGS = dict(lr=0.05, lr_schedule="cosine", warmup_steps=2, schedule_steps=5, min_lr_ratio=0.1, grad_clip=None)
THETA0 = np.array([[0.5, -1.0, 2.0], [0.25, 0.0, -0.75]], np.float32)
GRADS = [np.array(g, np.float32) for g in ([[1.0, -2.0, 0.5], [0.1, 3.0, -1.0]], [[-0.5, 1.0, 0.2], [0.3, -1.0, 0.4]],
                                            [[0.2, 0.2, -0.3], [1.0, 0.5, 0.5]], [[0.7, -0.1, 0.0], [-0.2, 0.3, 0.9]])]
LRS = [SETTINGS["lr"] * closed_form(k, "cosine", 2, 5, 0.1) for k in range(len(GRADS))]


def torch_steps(optimizer, weight_decay):
    """(parameters, learning rates read back) of the torch training state's own optimiser and
    scheduler fed GRADS."""
    import torch

    from sdelang_torch.training_state import TorchTrainingState

    net = torch.nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.as_tensor(THETA0))
    state = TorchTrainingState(None, net, training_config(optimizer=optimizer, weight_decay=weight_decay, **SETTINGS))
    params, lrs = [], []
    for g in GRADS:
        lrs.append(state.learning_rate())
        net.weight.grad = torch.as_tensor(g)
        state.optimizer.step()
        state.scheduler.step()
        params.append(net.weight.detach().numpy().copy())
    return params, lrs


@pytest.mark.torch
@pytest.mark.parametrize("optimizer, weight_decay", [("adam", 0.0), ("adam", 0.3), ("adamw", 0.3)])
def test_torch_optimiser_and_schedule_match_a_hand_computation(optimizer, weight_decay):
    """torch.optim.Adam (L2: g + λθ) / AdamW (θ ← θ - lr λ θ) under LambdaLR with warm-up and a
    cosine decay to 0.1 lr equal the hand-written recursion; the lr read back from param_groups
    before each step is lr · f(k)."""
    pytest.importorskip("torch")
    params, lrs = torch_steps(optimizer, weight_decay)
    np.testing.assert_allclose(lrs, LRS, rtol=1e-12)
    want = reference_adam(THETA0, GRADS, LRS, weight_decay, decoupled=optimizer == "adamw")
    for got, expected in zip(params, want):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    # the decay has power: the other rule (or none) gives other weights
    other = reference_adam(THETA0, GRADS, LRS, 0.3 - weight_decay, decoupled=optimizer != "adamw")
    assert np.max(np.abs(params[-1] - other[-1])) > 1e-4


@pytest.mark.jax
@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_jax_optimiser_equals_torch_on_the_same_gradients(both, optimizer):
    """The JAX Adam module (the trainer's optimiser_of(config)) with the same weights, gradients and
    schedule gives torch's parameters to 1e-6 and the same learning rates."""
    import jax.numpy as jnp

    from sdelang_jax.training_state import optimizer_of

    torch_params, torch_lrs = torch_steps(optimizer, 0.3)
    adam = optimizer_of(training_config(optimizer=optimizer, weight_decay=0.3, **SETTINGS))
    params = jnp.asarray(THETA0)
    state = adam.init(params)
    for g, want, lr in zip(GRADS, torch_params, torch_lrs):
        assert float(adam.learning_rate(state.count)) == pytest.approx(lr, rel=1e-12)
        updates, state = adam.update(jnp.asarray(g), state, params)
        params = params + updates
        assert params.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(params), want, rtol=1e-6, atol=1e-6)


#: Every option on; the trainers of the fit-level tests share these settings and one network shape,
#: so JAX compiles their training chunk once (schedule_steps=None becomes the fits' 40 steps).
OPTIONS = dict(optimizer="adamw", weight_decay=0.05, lr=1e-2, lr_schedule="cosine", warmup_steps=6, min_lr_ratio=0.1,
               precision="bfloat16", batch_size=64, steps_per_call=10, ema_decay=0.9)
STEPS = 40
DATA = gaussian_data(1000)          # one data shape too: it is part of the compiled chunk's signature


def make_trainer(backend, net_seed=0, **changes):
    return backend.lib.ScoreTrainer(backend.compile("vp"), backend.mlp(2, hidden=16, depth=2, seed=net_seed),
                                    **{**OPTIONS, **changes})


def test_the_steps_use_the_scheduled_learning_rate(backend):
    """Through fit, in chunks: after k steps the optimiser's own state (torch's param_groups, JAX's
    step count) gives lr · f(k) for the next step; schedule_steps=None becomes the fit's total steps
    and goes into the config; chunks of separate fit calls give the losses of one call."""
    data = DATA
    trainer = make_trainer(backend)
    assert trainer.config["schedule_steps"] is None
    trainer.fit(data, STEPS, progress=False)
    assert trainer.config["schedule_steps"] == STEPS
    fresh = make_trainer(backend, schedule_steps=STEPS)
    got, at = [fresh.learning_rate()], [0]
    for k in (3, 10, 17, 30, STEPS):
        fresh.fit(data, k, progress=False)
        got.append(fresh.learning_rate())
        at.append(k)
    np.testing.assert_allclose(got, [OPTIONS["lr"] * closed_form(k, "cosine", 6, STEPS, 0.1) for k in at], rtol=1e-6)
    assert fresh.losses == trainer.losses


# ------------------------------------------------------------------------------ precision
@pytest.mark.torch
def test_torch_bfloat16_autocast_loss_is_close_to_float32_and_params_stay_float32():
    """Under precision="bfloat16" the loss's forward pass runs in bf16 autocast on CPU: with the same
    draws it differs from the float32 loss (autocast is on) by no more than a few bf16 roundings;
    the loss returned, the parameters and the gradients are float32; float16 on CPU is refused."""
    torch = pytest.importorskip("torch")
    from score_backends import make_backend

    from sdelang.score.trainer import training_loss

    B = make_backend("torch")
    module = B.compile("vp")
    trainer = B.lib.ScoreTrainer(module, B.mlp(2, hidden=32, depth=2), precision="bfloat16", batch_size=256,
                                 steps_per_call=5)
    state = trainer.state
    x0 = torch.as_tensor(gaussian_data(256))
    start = state.stream.get_state()
    with torch.no_grad(), state.autocast():
        low = training_loss(trainer.module, state.net, x0, state.stream, trainer.config)
    state.stream.set_state(start)
    with torch.no_grad():
        full = training_loss(trainer.module, state.net, x0, state.stream, trainer.config)
    assert float(low) != float(full)
    assert abs(float(low) - float(full)) < 16 * BF16_EPS * abs(float(full))
    losses = trainer.fit(gaussian_data(500), 5, progress=False)
    assert len(losses) == 5 and all(math.isfinite(v) for v in losses)
    assert state.run(x0, 1).dtype == torch.float32
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in state.net.parameters())
    with pytest.raises(ValueError, match="float16"):
        B.lib.ScoreTrainer(module, B.mlp(2), precision="float16")


@pytest.mark.jax
def test_jax_bfloat16_policy_runs_the_loss_in_bf16_with_float32_master_weights(both):
    """The bf16 policy's loss traces matrix products in bfloat16 (the policy is on), its value is
    float32 and close to the float32 loss on the same batch (its own bf16 draws differ, so the
    tolerance is the loss's Monte-Carlo spread at this batch size, a few per cent), gradients and
    the trained parameters stay float32."""
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from sdelang_jax.training_state import JaxStream, policy_loss, trainable

    _, B = both
    module = B.compile("vp").with_score(None)
    params, static = eqx.partition(B.mlp(2, hidden=16, depth=2), eqx.is_inexact_array)
    x0 = jnp.asarray(gaussian_data(8192))
    low_cfg = training_config(precision="bfloat16")
    full_cfg = training_config()

    def loss(p, cfg, seed):
        return policy_loss(module, p, static, x0, JaxStream(jax.random.PRNGKey(seed)), cfg)

    jaxpr = str(jax.make_jaxpr(lambda p: loss(p, low_cfg, 0))(params))
    assert "bf16" in jaxpr and "bf16" not in str(jax.make_jaxpr(lambda p: loss(p, full_cfg, 0))(params))
    low_loss = jax.jit(lambda p, seed: loss(p, low_cfg, seed))
    full_loss = jax.jit(lambda p, seed: loss(p, full_cfg, seed))
    low = np.mean([float(low_loss(params, s)) for s in range(4)])
    full = np.mean([float(full_loss(params, s)) for s in range(4)])
    assert low_loss(params, 0).dtype == jnp.float32
    assert abs(low - full) < 0.05 * abs(full)
    grads = jax.eval_shape(jax.grad(lambda p: loss(p, low_cfg, 0)), params)
    assert all(g.dtype == jnp.float32 for g in jax.tree_util.tree_leaves(grads))
    trainer = make_trainer(B)
    losses = trainer.fit(DATA, STEPS, progress=False)
    assert all(math.isfinite(v) for v in losses)
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(trainable(trainer.net)))


# ------------------------------------------------------------------------------ validation
def test_validation_loss_is_recorded_deterministic_and_falls(backend):
    """validate_every=10 over 40 steps: values at steps 10, 20, 30, 40 (and every ceil(steps/10) = 4
    by default); each equals a fresh validation_loss of the same EMA weights (the fixed stream), a
    second trainer reproduces them, and on one Gaussian the last is below the first."""
    data, held_out = DATA, gaussian_data(128, seed=5)
    trainer = make_trainer(backend)
    trainer.fit(data, STEPS, progress=False, validation=held_out, validate_every=10)
    assert [s for s, _ in trainer.validation_losses] == [10, 20, 30, 40]
    values = [v for _, v in trainer.validation_losses]
    assert trainer.validation_loss(held_out) == values[-1] == trainer.validation_loss(held_out)
    assert values[-1] < 0.9 * values[0]
    again = make_trainer(backend, schedule_steps=STEPS)
    again.fit(data, STEPS, progress=False, validation=held_out)
    assert [s for s, _ in again.validation_losses] == list(range(4, STEPS + 1, 4))
    assert dict(again.validation_losses)[20] == dict(trainer.validation_losses)[20]
    assert again.losses == trainer.losses


# ------------------------------------------------------------------------------ resume
def test_resume_with_every_option_reproduces_the_uninterrupted_run(backend, tmp_path):
    """AdamW + weight decay, warm-up and cosine decay over schedule_steps=None (set by the first
    fit to its 40 steps), bfloat16, validation every 10 steps: a fit(40) interrupted after its
    checkpoint at step 20, resumed by a trainer with other initial weights, equals 40 straight
    steps bit for bit (net, EMA, optimiser, scheduler, stream, losses, validation losses)."""
    data, held_out = DATA, gaussian_data(128, seed=7)
    straight = make_trainer(backend)
    straight.fit(data, STEPS, progress=False, validation=held_out, validate_every=10)
    path = tmp_path / "checkpoint"
    first = make_trainer(backend)
    run = first.train_steps

    def interrupted(data, target):
        if first.step >= 20:
            raise KeyboardInterrupt
        return run(data, target)

    first.train_steps = interrupted
    with pytest.raises(KeyboardInterrupt):
        first.fit(data, STEPS, progress=False, checkpoint=path, checkpoint_every=20, validation=held_out,
                  validate_every=10)
    saved = backend.ops.load(path)
    assert saved["step"] == 20 and saved["config"]["schedule_steps"] == STEPS
    resumed = make_trainer(backend, net_seed=9)
    resumed.fit(data, STEPS, progress=False, checkpoint=path, checkpoint_every=20, validation=held_out,
                validate_every=10)
    assert resumed.config["schedule_steps"] == straight.config["schedule_steps"] == STEPS
    assert resumed.losses == straight.losses and len(resumed.losses) == STEPS
    assert resumed.validation_losses == straight.validation_losses and len(straight.validation_losses) == 4
    assert_identical(resumed.state_dict()["training"], straight.state_dict()["training"])
    assert resumed.learning_rate() == straight.learning_rate() == pytest.approx(0.1 * OPTIONS["lr"])


# ------------------------------------------------------------------------------ errors
def test_unknown_options_are_type_errors_naming_them(backend):
    net = backend.mlp(2, hidden=4, depth=1)
    with pytest.raises(TypeError, match=r"'warmup'.*did you mean 'warmup_steps'"):
        backend.lib.ScoreTrainer(backend.compile("vp"), net, warmup=10)
    with pytest.raises(TypeError, match="'optimiser'"):
        training_config(optimiser="adam")


@pytest.mark.parametrize("settings, match", [
    (dict(optimizer="sgd"), "optimizer"), (dict(weight_decay=-0.1), "weight_decay"),
    (dict(weight_decay=float("nan")), "weight_decay"), (dict(lr_schedule="step"), "lr_schedule"),
    (dict(warmup_steps=-1), "warmup_steps"), (dict(warmup_steps=1.5), "warmup_steps"),
    (dict(schedule_steps=0), "schedule_steps"), (dict(lr_schedule="cosine", warmup_steps=10, schedule_steps=10),
                                                 "schedule_steps"),
    (dict(min_lr_ratio=1.5), "min_lr_ratio"), (dict(precision="float8"), "precision"),
    (dict(precision="fp16"), "precision"), (dict(grad_clip=0.0), "grad_clip")])
def test_bad_values_are_value_errors(settings, match):
    with pytest.raises(ValueError, match=match):
        training_config(**settings)


def test_fit_checks_its_own_values(backend):
    trainer = backend.lib.ScoreTrainer(backend.compile("vp"), backend.mlp(2, hidden=4, depth=1),
                                       lr_schedule="cosine", warmup_steps=50, batch_size=8)
    data = gaussian_data(50)
    with pytest.raises(ValueError, match="validate_every"):
        trainer.fit(data, 10, progress=False, validation=data, validate_every=0)
    with pytest.raises(ValueError, match="schedule_steps"):   # 10 total steps cannot hold a 50-step warm-up
        trainer.fit(data, 10, progress=False)
    assert trainer.step == 0 and trainer.config["schedule_steps"] is None
