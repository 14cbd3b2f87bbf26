"""The ScoreModel facade (issue 14) on both backends: data of any shape (N, *shape), unknown options
refused with a TypeError naming them, the probability-flow ODE's solver chosen by name (fixed-step
and adaptive, NFE counted against the evaluations made), batched sampling and likelihoods
(reproducible, concatenated in order, with a progress bar), the exact trace up to
EXACT_TRACE_MAX_DIM dimensions, and bits per dimension of dequantised discrete data against the
closed form of a discretised Gaussian."""
from __future__ import annotations

import math

import numpy as np
import pytest

from sdelang.score.defaults import EXACT_TRACE_MAX_DIM

import score_backends as sb
from score_backends import GAUSSIAN, T_MIN, Mixture, backend, mixture  # noqa: F401

LN2 = math.log(2)


def exact_model(B, data=GAUSSIAN, net=None):
    """A float64 facade on VP whose net is the exact score of Gaussian data (``net`` may wrap it)."""
    exact = mixture(B.name, "vp", data)
    return B.lib.ScoreModel(B.compile("vp"), net=exact if net is None else net, dtype=B.f64), exact


def biggest(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# ------------------------------------------------------------------------------ 1. shapes
def test_data_of_any_shape_is_flattened_and_samples_come_back_in_its_shape(backend):
    B = backend
    model = B.lib.ScoreModel(sb.EXAMPLES / "vp.sde", d=64, hidden=16, depth=1)
    assert model.shape is None
    assert B.to_numpy(model.sample(3, "ddim", steps=2).samples).shape == (3, 64)      # before fit: (n, d)
    data = np.random.default_rng(0).uniform(-1, 1, (40, 1, 8, 8)).astype(np.float32)
    model.fit(data, steps=2, batch_size=8, progress=False)
    assert model.shape == (1, 8, 8) and len(model.losses) == 2
    for method, steps in (("ddim", 2), ("em", 3), ("heun", 2)):
        samples = B.to_numpy(model.sample(5, method, steps=steps).samples)
        assert samples.shape == (5, 1, 8, 8) and np.all(np.isfinite(samples)), method
    start = np.zeros((3, 1, 8, 8))
    assert B.to_numpy(model.sample(3, "ddim", steps=2, x_init=start).samples).shape == (3, 1, 8, 8)
    x = data[:3]
    lp = B.to_numpy(model.log_prob(x, rtol=1e-4, atol=1e-4))
    flat = B.to_numpy(model.log_prob(x.reshape(3, 64), rtol=1e-4, atol=1e-4))
    assert lp.shape == (3,) and np.all(np.isfinite(lp))
    np.testing.assert_allclose(lp, flat, rtol=1e-6)
    bpd = B.to_numpy(model.bits_per_dim(x, rtol=1e-4, atol=1e-4))
    np.testing.assert_allclose(bpd, -lp / (64 * LN2), rtol=1e-5)   # d = 64 numbers per sample


def test_a_wrong_dimension_is_a_clear_error_naming_both(backend):
    B = backend
    model = B.lib.ScoreModel(sb.EXAMPLES / "vp.sde", hidden=8, depth=1)                # d = 2
    with pytest.raises(ValueError, match=r"64 numbers per sample.*dimension 2.*pass d=64 \(ScoreModel\(spec, d=64\)\)"):
        model.fit(np.zeros((10, 1, 8, 8), np.float32), steps=1, progress=False)
    assert model.trainer is None and model.shape is None
    with pytest.raises(ValueError, match="3 numbers per sample"):
        model.log_prob(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="3 numbers per sample"):
        model.sample(4, "ddim", steps=2, x_init=np.zeros((4, 3)))
    compiled = B.lib.ScoreModel(B.compile("vp"), net=B.mlp(2))
    with pytest.raises(ValueError, match=r"5 numbers per sample.*dimension 2.*compile the model with d=5"):
        compiled.fit(np.zeros((4, 5), np.float32), steps=1, progress=False)
    # a user net of another dimension fails at construction, not deep inside a sampler
    with pytest.raises(ValueError, match=r"score net fails on x of shape \(2, 2\).*dimension 2"):
        B.lib.ScoreModel(B.compile("vp"), net=B.mlp(3))
    with pytest.raises(ValueError, match=r"maps x of shape \(2, 2\) to shape \(2, 1\)"):
        B.lib.ScoreModel(B.compile("vp"), net=lambda x, t: x[:, :1])


# ------------------------------------------------------------------------------ 2. options
def test_unknown_options_are_type_errors_naming_them_and_the_accepted_ones(backend):
    B = backend
    model = B.lib.ScoreModel(sb.EXAMPLES / "vp.sde", hidden=8, depth=1)
    data = np.random.default_rng(1).normal(size=(64, 2)).astype(np.float32)
    with pytest.raises(TypeError, match=r"^ScoreModel\.fit\(\) got an unexpected keyword argument 'grad_clipping'.*"
                                        r"batch_size.*ema_decay"):
        model.fit(data, steps=1, grad_clipping=5.0, progress=False)
    assert model.trainer is None                           # refused before any training
    model.fit(data, steps=1, grad_clip=5.0, progress=False)   # a trainer option, forwarded
    assert model.trainer.config["grad_clip"] == 5.0
    x = data[:4]
    cases = [
        (lambda: model.sample(4, "em", steps=2, snr=0.1), "sample", "snr", "denoise"),
        (lambda: model.sample(4, "ddim", stepz=3), "sample", "stepz", "grid"),
        (lambda: model.sample(4, "ode", solvr="rk4"), "sample", "solvr", "solver"),
        (lambda: model.log_prob(x, rtool=1e-3), "log_prob", "rtool", "rtol"),
        (lambda: model.bits_per_dim(x, dequantise=True), "bits_per_dim", "dequantise", "dequantize"),
    ]
    for call, where, name, accepted in cases:
        with pytest.raises(TypeError, match=rf"^ScoreModel\.{where}\(\) got an unexpected keyword argument "
                                            rf"'{name}'.*{accepted}"):
            call()
    with pytest.raises(TypeError, match=r"did you mean 'dequantize'"):
        model.bits_per_dim(x, dequantise=True)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments 'a', 'b'"):
        model.log_prob(x, a=1, b=2)


def test_the_conditional_keywords_of_the_contract_are_accepted_at_their_defaults(backend):
    """DESIGN 4b: ScoreModel(num_classes=None), fit(labels=None), sample(labels=None, guidance=0.0);
    labels or guidance given to a model without classes are a ValueError saying what to do."""
    B = backend
    model = B.lib.ScoreModel(sb.EXAMPLES / "vp.sde", hidden=8, depth=1, num_classes=None)
    data = np.random.default_rng(1).normal(size=(32, 2)).astype(np.float32)
    model.fit(data, steps=1, labels=None, progress=False)
    assert B.to_numpy(model.sample(4, "ddim", steps=2, labels=None, guidance=0.0).samples).shape == (4, 2)
    with pytest.raises(ValueError, match="num_classes=K"):
        model.sample(4, "ddim", steps=2, guidance=1.0)
    with pytest.raises(ValueError, match="without classes"):
        model.fit(data, steps=2, labels=np.zeros(32, int), progress=False)


def test_every_option_that_worked_still_reaches_its_sampler_loss_or_solver(backend):
    B = backend
    model, exact = exact_model(B)
    x1 = exact.sample(1.0, 8, seed=0)
    calls = [
        ("em", dict(steps=5, denoise=False, t_min=2e-3), 5),
        ("pc", dict(steps=4, snr=0.1, corrector_steps=2, corrector_alpha=1.0), 12),
        ("ode", dict(rtol=1e-4, atol=1e-4, options={}), None),
        ("ddim", dict(steps=3, grid="quadratic", denoise=True), 4),
        ("dpm-solver", dict(steps=3, order=2), 6),
        ("dpm-solver++", dict(steps=3, order=3, grid="log-snr"), 4),   # 3M started by 2S
        ("deis", dict(steps=3, order=2), 3),
        ("heun", dict(steps=3, grid="edm", rho=5.0, s_churn=1.0, s_tmin=0.01, s_tmax=10.0, s_noise=1.003), 6),
        ("ancestral", dict(steps=3, order=2), 3),
    ]
    for method, options, nfe in calls:
        out = model.sample(8, method, x_init=x1, dtype=B.f64, seed=1, use_ema=False, **options)
        samples = B.to_numpy(out.samples)
        assert samples.shape == (8, 2) and np.all(np.isfinite(samples)), method
        assert nfe is None or out.nfe == nfe, (method, out.nfe)
    # loss options of the loss in use (SSM on a model without a kernel)
    gbm = B.lib.ScoreModel(B.compile("gbm"), loss="ssm", hidden=8, depth=1)
    gbm.fit(np.ones((40, 1), np.float32), steps=2, batch_size=8, sim_steps=5, projection="gaussian", progress=False,
            lr=1e-3, ema_decay=0.9, seed=2, checkpoint=None, checkpoint_every=10, resume=False)
    assert len(gbm.losses) == 2 and all(math.isfinite(v) for v in gbm.losses)
    # log_prob's and bits_per_dim's own options
    x = exact.sample(T_MIN, 4, seed=3)
    prior = lambda z: exact.log_prob(z, 1.0)  # noqa: E731
    lp = model.log_prob(x, exact=True, rtol=1e-6, atol=1e-6, t_min=T_MIN, seed=1, prior=prior, use_ema=False,
                        options={})
    np.testing.assert_allclose(B.to_numpy(lp), B.to_numpy(exact.log_prob(B.asarray(x), T_MIN)), atol=1e-4)
    bpd = model.bits_per_dim(x, exact=False, rtol=1e-6, atol=1e-6, seed=1, prior=prior)
    assert np.all(np.isfinite(B.to_numpy(bpd)))


# ------------------------------------------------------------------------------ 3. ODE solvers
FIXED = {"torch": ("euler", "midpoint", "rk4"), "jax": ("euler", "heun", "midpoint", "ralston", "rk4")}
ADAPTIVE = {"torch": ("dopri5", "bosh3", "dopri8"), "jax": ("tsit5", "dopri5", "dopri8")}
STAGES = {"euler": 1, "midpoint": 2, "heun": 2, "ralston": 2, "rk4": 4}


def test_the_ode_solver_is_chosen_by_name_and_its_nfe_is_the_evaluations_made(backend):
    B = backend
    exact = mixture(B.name, "vp", GAUSSIAN)
    counted, count = B.counter(exact)
    model, _ = exact_model(B, net=counted)
    x1 = exact.sample(1.0, 32, seed=2)
    ref = B.to_numpy(model.sample(32, "ode", x_init=x1, rtol=1e-10, atol=1e-10).samples)
    errors, results = {}, {}
    for solver in FIXED[B.name]:
        before = count()
        out = model.sample(32, "ode", 40, solver=solver, x_init=x1)
        assert out.nfe == count() - before == STAGES[solver] * 40, (solver, out.nfe)
        results[solver] = B.to_numpy(out.samples)
        errors[solver] = biggest(results[solver], ref)
    assert errors["rk4"] < 1e-4 < errors["midpoint"] < errors["euler"], errors
    # dt= is the same grid as steps= when it divides the span
    by_dt = model.sample(32, "ode", solver="euler", dt=(1.0 - T_MIN) / 40, x_init=x1)
    assert by_dt.nfe == 40 and biggest(B.to_numpy(by_dt.samples), results["euler"]) < 1e-12
    for solver in ADAPTIVE[B.name]:
        before = count()
        out = model.sample(32, "ode", solver=solver, x_init=x1, rtol=1e-8, atol=1e-8)
        assert out.nfe == count() - before > 0, (solver, out.nfe)
        assert biggest(B.to_numpy(out.samples), ref) < 1e-5, solver
        ignored = model.sample(32, "ode", 7, solver=solver, x_init=x1, rtol=1e-8, atol=1e-8)   # steps: ignored
        assert ignored.nfe == out.nfe
    with pytest.raises(ValueError, match=r"fixed-step ODE solver 'euler' needs its steps: pass steps= or dt="):
        model.sample(4, "ode", solver="euler", x_init=x1[:4])
    with pytest.raises(ValueError, match="ODE solvers are"):
        model.sample(4, "ode", solver="nosuch", x_init=x1[:4])
    with pytest.raises(ValueError, match="not both"):
        model.sample(4, "ode", 10, solver="euler", dt=0.1, x_init=x1[:4])
    # log_prob takes the same solvers
    x = exact.sample(T_MIN, 16, seed=5)
    truth = B.to_numpy(exact.log_prob(B.asarray(x), T_MIN))
    prior = lambda z: exact.log_prob(z, 1.0)  # noqa: E731
    for solver, options in (("rk4", dict(steps=200)), (ADAPTIVE[B.name][1], dict(rtol=1e-9, atol=1e-9))):
        got = B.to_numpy(model.log_prob(x, solver=solver, prior=prior, **options))
        assert biggest(got, truth) < 1e-4, solver


@pytest.mark.torch
def test_the_torch_method_keyword_stays_an_alias_of_solver():
    B = sb.backend_or_skip("torch")
    exact = mixture("torch", "vp", GAUSSIAN)
    module = B.compile("vp", score=exact)
    x1 = B.asarray(exact.sample(1.0, 8, seed=2))
    new = B.lib.sample_ode(module, 8, solver="rk4", steps=20, x_init=x1)
    old = B.lib.sample_ode(module, 8, method="rk4", steps=20, x_init=x1)
    assert old.nfe == new.nfe == 80 and biggest(old.samples, new.samples) == 0
    with pytest.raises(TypeError, match="not both"):
        B.lib.sample_ode(module, 8, solver="rk4", method="euler", steps=20, x_init=x1)
    x = B.asarray(exact.sample(T_MIN, 8, seed=3))
    a = B.lib.log_prob(module, x, method="bosh3", rtol=1e-6, atol=1e-6)
    b = module.log_prob(x, solver="bosh3", rtol=1e-6, atol=1e-6)
    c = module.log_prob(x, method="bosh3", rtol=1e-6, atol=1e-6)
    assert biggest(B.to_numpy(a), B.to_numpy(b)) == 0 and biggest(B.to_numpy(a), B.to_numpy(c)) == 0


# ------------------------------------------------------------------------------ 4. batches, progress, exact trace
def test_batched_calls_are_reproducible_ordered_concatenations_with_a_progress_bar(backend, capsys):
    B = backend
    model, exact = exact_model(B)
    capsys.readouterr()
    batched = model.sample(10, "em", steps=20, seed=3, batch_size=4)
    bar = capsys.readouterr().err
    assert "em sampling" in bar and "/3" in bar                     # a bar over the three chunks
    again = model.sample(10, "em", steps=20, seed=3, batch_size=4, progress=False)
    whole = model.sample(10, "em", steps=20, seed=3)
    single = model.sample(10, "em", steps=20, seed=3, batch_size=10)
    assert capsys.readouterr().err == ""                            # no bar: progress=False or one chunk
    got = B.to_numpy(batched.samples)
    assert got.shape == (10, 2) and batched.nfe == again.nfe == 20
    assert biggest(got, B.to_numpy(again.samples)) == 0             # reproducible
    assert biggest(B.to_numpy(single.samples), B.to_numpy(whole.samples)) == 0   # one chunk: the unbatched call
    assert biggest(got[:4], got[4:8]) > 0.1                          # each chunk its own seed
    assert biggest(got, B.to_numpy(model.sample(10, "em", steps=20, seed=4, batch_size=4).samples)) > 0.1
    # with x_init the chunks are its rows in order: a fixed-step ODE equals the unbatched solve
    x1 = exact.sample(1.0, 10, seed=0)
    whole = model.sample(10, "ode", 30, solver="rk4", x_init=x1)
    parts = model.sample(10, "ode", 30, solver="rk4", x_init=x1, batch_size=3, progress=False)
    assert parts.nfe == whole.nfe == 120 and biggest(B.to_numpy(parts.samples), B.to_numpy(whole.samples)) < 1e-10
    few = model.sample(10, "dpm-solver++", steps=5, x_init=x1, batch_size=4, progress=False)
    assert few.nfe == 5 and biggest(B.to_numpy(few.samples),
                                    B.to_numpy(model.sample(10, "dpm-solver++", steps=5, x_init=x1).samples)) < 1e-10
    # log_prob and bits_per_dim in chunks
    x = exact.sample(T_MIN, 10, seed=1)
    lp = B.to_numpy(model.log_prob(x, solver="rk4", steps=50))
    capsys.readouterr()
    lp_parts = B.to_numpy(model.log_prob(x, solver="rk4", steps=50, batch_size=4))
    bar = capsys.readouterr().err
    assert "log_prob" in bar and "/3" in bar
    assert lp_parts.shape == (10,) and biggest(lp_parts, lp) < 1e-10
    bpd = B.to_numpy(model.bits_per_dim(x, solver="rk4", steps=50, batch_size=4, progress=False))
    np.testing.assert_allclose(bpd, -lp / (2 * LN2), rtol=1e-10)
    adaptive = B.to_numpy(model.log_prob(x, batch_size=3, progress=False, rtol=1e-7, atol=1e-7))
    assert biggest(adaptive, B.to_numpy(model.log_prob(x, rtol=1e-7, atol=1e-7))) < 1e-5
    hutch = [B.to_numpy(model.log_prob(x, exact=False, batch_size=4, progress=False)) for _ in range(2)]
    assert biggest(*hutch) == 0
    with pytest.raises(ValueError, match="batch_size"):
        model.sample(4, "em", steps=2, batch_size=0)


def test_log_prob_is_exact_up_to_the_threshold_dimension_and_hutchinson_above(backend):
    """EXACT_TRACE_MAX_DIM (16) dimensions: exact=None is the exact trace; one more: Hutchinson's
    estimate (an untrained MLP's Jacobian is not diagonal, so the two differ)."""
    B = backend
    assert EXACT_TRACE_MAX_DIM == 16
    rng = np.random.default_rng(0)
    for d in (EXACT_TRACE_MAX_DIM, EXACT_TRACE_MAX_DIM + 1):
        model = B.lib.ScoreModel(sb.EXAMPLES / "vp.sde", d=d, hidden=16, depth=1, dtype=B.f64, seed=1)
        x = rng.normal(size=(4, d))
        tol = dict(rtol=1e-6, atol=1e-6, seed=2)
        default, exact, hutch = (B.to_numpy(model.log_prob(x, exact=e, **tol)) for e in (None, True, False))
        assert biggest(exact, hutch) > 1e-3, d
        assert biggest(default, exact if d <= EXACT_TRACE_MAX_DIM else hutch) < 1e-12, d


# ------------------------------------------------------------------------------ 5. bits per dimension
DATA = dict(weights=[1.0], means=[[0.1, -0.2]], covs=[[0.09, 0.03, 0.0625]])    # well inside [-1, 1]


def discretised(exact: Mixture, n: int, bits: int, seed: int):
    """(x on the bits-bit grid 2 k / (2^bits - 1) - 1, k): n draws of p_{t_min} quantised."""
    levels = 2 ** bits - 1
    k = np.clip(np.rint((exact.sample(T_MIN, n, seed) + 1) / 2 * levels), 0, levels)
    return 2 * k / levels - 1, k


def closed_form_bpd(exact: Mixture, k, bits: int):
    """Per row: E_u[-log p(x̃)] / (d ln 2) + bits - 1 for x̃ uniform on the bin of k (width
    w = 2 / 2^bits, centre c) and p = N(m, P) the exact p_{t_min}: -log p is quadratic, so
    E_u[-log p(x̃)] = (d/2) log 2π + ½ log det P + ½ (c - m)ᵀ P⁻¹ (c - m) + (w² / 24) tr P⁻¹;
    and the discrete model's -log2 P(bin) / d with P(bin) = ∫_bin p by 12 × 12 Gauss–Legendre."""
    (m, P), = exact.component_moments(T_MIN)
    d, w = 2, 2.0 / 2 ** bits
    Q = np.linalg.inv(P)
    c = 2 * (k + 0.5) / 2 ** bits - 1
    r = c - m
    mean_nll = (d / 2 * math.log(2 * math.pi) + 0.5 * math.log(np.linalg.det(P))
                + 0.5 * np.einsum("ni,ij,nj->n", r, Q, r) + w ** 2 / 24 * np.trace(Q))
    nodes, weights = np.polynomial.legendre.leggauss(12)
    u = 0.5 * (nodes + 1)                                               # on [0, 1]
    points = (2 * (k[:, None, None, :] + np.stack(np.meshgrid(u, u, indexing="ij"), -1)) / 2 ** bits - 1) - m
    density = np.exp(-0.5 * np.einsum("nabi,ij,nabj->nab", points, Q, points)) / (
        2 * math.pi * math.sqrt(np.linalg.det(P)))
    mass = np.einsum("nab,a,b->n", density, weights, weights) * (w / 2) ** 2
    return mean_nll / (d * LN2) + bits - 1, -np.log2(mass) / d


@pytest.mark.parametrize("bits", [4, 8])
def test_dequantised_bits_per_dim_is_the_discretised_gaussian_s(backend, bits):
    """Gaussian data with its exact score: the flow's log p is the exact Gaussian density, so the
    dequantised bits per dimension (one uniform draw per value, plus the bits - 1 offset) averages
    to the closed form E_u[-log2 p(x̃)] / d + bits - 1 (within 4 standard errors), which lies above
    the discretised Gaussian's -log2 P(bin) / d by the small Jensen gap; and it is exactly
    -log p(dequantized(x)) / (d ln 2) + bits - 1 for the same seed."""
    B = backend
    model, exact = exact_model(B, data=DATA)
    prior = lambda z: exact.log_prob(z, 1.0)  # noqa: E731
    tol = dict(rtol=1e-8, atol=1e-8)
    n = 256
    x, k = discretised(exact, n, bits, seed=11)
    got = B.to_numpy(model.bits_per_dim(x, dequantize=True, bits=bits, seed=7, prior=prior, **tol))
    expected, discrete = closed_form_bpd(exact, k, bits)
    assert np.all(expected >= discrete)
    diff = got - expected
    se = diff.std(ddof=1) / math.sqrt(n)
    assert abs(diff.mean()) < 4 * se + 1e-5, (diff.mean(), se)
    gap = float(np.mean(expected - discrete))
    assert gap < (0.05 if bits == 4 else 5e-4)
    assert got.mean() > discrete.mean() - 4 * se
    # the dequantised points: in their bins, and the bits per dimension is exactly their density's
    tilde = B.to_numpy(model.dequantized(x, bits, seed=7))
    position = (tilde + 1) * 2 ** bits / 2 - k                        # ∈ [0, 1): where in its bin
    assert np.all((position >= 0) & (position <= 1)) and abs(position.mean() - 0.5) < 0.05
    assert abs(position.var() - 1 / 12) < 0.015                       # one whole bin: Var U(0, 1) = 1/12
    by_hand = -B.to_numpy(exact.log_prob(B.asarray(tilde), T_MIN)) / (2 * LN2) + bits - 1
    assert biggest(got, by_hand) < 1e-5
    # seeded, in the data's shape, and no offset without dequantisation
    few = x[:8]
    once = B.to_numpy(model.bits_per_dim(few, dequantize=True, bits=bits, seed=7, prior=prior, **tol))
    same = B.to_numpy(model.bits_per_dim(few.reshape(8, 1, 2), dequantize=True, bits=bits, seed=7, prior=prior, **tol))
    assert biggest(same, once) == 0
    other = B.to_numpy(model.bits_per_dim(few, dequantize=True, bits=bits, seed=8, prior=prior, **tol))
    assert biggest(other, once) > 1e-6
    plain = B.to_numpy(model.bits_per_dim(few, prior=prior, **tol))
    np.testing.assert_allclose(plain, -B.to_numpy(model.log_prob(few, prior=prior, **tol)) / (2 * LN2), rtol=1e-12)
    with pytest.raises(ValueError, match=rf"{bits}-bit data scaled to \[-1, 1\]"):
        model.bits_per_dim(x[:4] + 0.3 / 2 ** bits, dequantize=True, bits=bits)
