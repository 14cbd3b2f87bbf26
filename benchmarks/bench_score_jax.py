"""Score-model sampling throughput (JAX): sdelang's samplers vs hand-written score_sde-style samplers
for the same SDE (VP, β ∈ [0.1, 20]) and the same network (ScoreMLP 2-64-64-2), measured in one run.

    python benchmarks/bench_score_jax.py [--n 10000] [--nfe 500] [--repeats 7] [--out benchmarks/results/score_jax.md]

Cases (float32, n particles in 2-D, fixed NFE = score evaluations per sample path):
  1. Euler–Maruyama: ``sample_em(module, n, steps=NFE)`` vs a hand-written ``lax.fori_loop`` in the
     style of score_sde's EulerMaruyamaPredictor (x_mean = x + f̄ dt, x = x_mean + g √|dt| z, last
     step returns x_mean);
  2. predictor–corrector: ``sample_pc(steps=NFE/2, corrector_steps=1, snr=0.16)`` vs score_sde's
     ReverseDiffusionPredictor + LangevinCorrector written by hand (α = 1 - β_i Δt for VP).
Each "ours" timing is the whole public call (prior draw, building the reverse module, NFE counting
by tracing one step, the jitted loop); medians of --repeats calls after a warm-up, which also
reports the first call (tracing + XLA compilation); ours and hand alternate, so a varying load on a
shared machine hits both alike. Samples/s = n / median.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

import sdelang
from sdelang_jax import ScoreMLP
from sdelang_jax.score_sampling import sample_em, sample_pc

B_MIN, B_MAX, T_MIN = 0.1, 20.0, 1e-3
HERE = os.path.dirname(os.path.abspath(__file__))


def seconds(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def paired(ours, hand, repeats):
    """(first call ours, first call hand, median ours, median hand, median of per-pair ratios): the
    two are timed alternately so that a varying load on a shared machine hits both alike."""
    first_ours, first_hand = seconds(ours), seconds(hand)
    t_ours, t_hand = [], []
    for _ in range(repeats):
        t_ours.append(seconds(ours))
        t_hand.append(seconds(hand))
    ratio = statistics.median(a / b for a, b in zip(t_ours, t_hand))
    return first_ours, first_hand, statistics.median(t_ours), statistics.median(t_hand), ratio


def vp_sde(x, t):
    """score_sde's VPSDE.sde: (drift, diffusion) at time t (a scalar)."""
    beta = B_MIN + t * (B_MAX - B_MIN)
    return -0.5 * beta * x, jnp.sqrt(beta)


@eqx.filter_jit
def hand_em(net, x, key, steps: int):
    """score_sde EulerMaruyamaPredictor on the reverse VP SDE, t from 1 to T_MIN."""
    dt = -(1.0 - T_MIN) / steps

    def body(i, carry):
        x, _ = carry
        t = 1.0 + i * dt
        drift, g = vp_sde(x, t)
        drift = drift - g**2 * net(x, jnp.full(x.shape[:-1], t, x.dtype))
        z = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
        x_mean = x + drift * dt
        return x_mean + g * jnp.sqrt(-dt) * z, x_mean

    _, x_mean = jax.lax.fori_loop(0, steps, body, (x, x))
    return x_mean


@eqx.filter_jit
def hand_pc(net, x, key, steps: int, snr: float):
    """score_sde LangevinCorrector (α = 1 - β_i Δt) + ReverseDiffusionPredictor (generic discretize)."""
    dt = (1.0 - T_MIN) / steps

    def body(i, carry):
        x, _ = carry
        t = 1.0 - i * dt
        t_vec = jnp.full(x.shape[:-1], t, x.dtype)
        k_c, k_p = jax.random.split(jax.random.fold_in(key, i))
        alpha = 1.0 - (B_MIN + t * (B_MAX - B_MIN)) * dt
        grad = net(x, t_vec)
        noise = jax.random.normal(k_c, x.shape, x.dtype)
        grad_norm = jnp.mean(jnp.linalg.norm(grad, axis=-1))
        noise_norm = jnp.mean(jnp.linalg.norm(noise, axis=-1))
        step = (snr * noise_norm / grad_norm) ** 2 * 2 * alpha
        x = x + step * grad + jnp.sqrt(2 * step) * noise
        drift, g = vp_sde(x, t)
        f = (drift - g**2 * net(x, t_vec)) * dt
        z = jax.random.normal(k_p, x.shape, x.dtype)
        x_mean = x - f
        return x_mean + g * jnp.sqrt(dt) * z, x_mean

    _, x_mean = jax.lax.fori_loop(0, steps, body, (x, x))
    return x_mean


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"{jax.devices()[0].platform}; jax {jax.__version__}, diffrax {diffrax.__version__}, "
            f"equinox {eqx.__version__}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--nfe", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "score_jax.md"))
    args = parser.parse_args()
    n, nfe = args.n, args.nfe

    net = ScoreMLP(2, key=jax.random.PRNGKey(1), width=64, depth=2, dtype=jnp.float32)
    vp = sdelang.load(os.path.join(HERE, "..", "examples", "vp.sde")).compile("jax", score=net)
    x1 = vp.prior_sample(n, seed=0, dtype=jnp.float32)
    key = jax.random.PRNGKey(2)
    rows = []

    result = sample_em(vp, n, steps=nfe, seed=0)
    assert result.nfe == nfe
    timing = paired(lambda: sample_em(vp, n, steps=nfe, seed=0).samples, lambda: hand_em(net, x1, key, nfe),
                    args.repeats)
    rows.append((f"Euler–Maruyama, {nfe} steps", nfe, *timing))

    result = sample_pc(vp, n, steps=nfe // 2, corrector_steps=1, snr=0.16, seed=0)
    assert result.nfe == 2 * (nfe // 2)
    timing = paired(lambda: sample_pc(vp, n, steps=nfe // 2, corrector_steps=1, snr=0.16, seed=0).samples,
                    lambda: hand_pc(net, x1, key, nfe // 2, 0.16), args.repeats)
    rows.append((f"predictor–corrector, {nfe // 2} steps x (1 + 1)", 2 * (nfe // 2), *timing))

    lines = [
        "# Score-model sampling throughput (JAX)",
        "",
        f"Machine: {machine()}.",
        f"VP SDE, ScoreMLP 2-64-64-2, {n} samples in 2-D, float32; medians of {args.repeats} calls after a "
        "warm-up, ours and hand timed alternately (ratio = median of per-pair ratios); 'first call' includes "
        "tracing and XLA compilation. Ours = the public sampler call "
        "(prior draw, reverse-module construction, NFE counting, jitted scan); hand = a score_sde-style "
        "jitted fori_loop on the same network.",
        "",
        "| sampler | NFE | ours (s) | hand-written (s) | ours samples/s | hand samples/s | ratio ours/hand (time) "
        "| first call ours / hand (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, k, co, ch, to, th, ratio in rows:
        lines.append(f"| {name} | {k} | {to:.4f} | {th:.4f} | {n / to:,.0f} | {n / th:,.0f} | {ratio:.2f}x "
                     f"| {co:.2f} / {ch:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
