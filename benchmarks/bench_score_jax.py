"""Score-model sampling throughput (JAX): sdelang's samplers vs hand-written score_sde-style samplers
for the same SDE (VP, β ∈ [0.1, 20]) and the same network (ScoreMLP 2-64-64-2), measured in one run.

    python benchmarks/bench_score_jax.py [--sizes 10000x500,1000x100] [--repeats 7] [--out benchmarks/results/score_jax.md]

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
import time

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp

import sdelang
from harness import paired_medians, publish
from sdelang_jax import ScoreMLP
from sdelang_jax import sample_em, sample_ode, sample_pc

B_MIN, B_MAX, T_MIN = 0.1, 20.0, 1e-3
HERE = os.path.dirname(os.path.abspath(__file__))


def seconds(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def paired(ours, hand, repeats):
    """(first call ours, first call hand, :class:`harness.Paired` timing): the first calls (tracing
    and compilation) timed once, then :func:`harness.paired_medians`."""
    first_ours, first_hand = seconds(ours), seconds(hand)
    timing = paired_medians(lambda: jax.block_until_ready(ours()), lambda: jax.block_until_ready(hand()), repeats,
                            lambda: None)
    return first_ours, first_hand, timing


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


@eqx.filter_jit
def hand_ode(net, x, rtol, atol):
    """The VP probability-flow ODE dx/dt = -½ β(t) (x + s(x, t)) by diffrax Tsit5 + PID, t from 1 to T_MIN."""
    def field(t, x, net):
        beta = B_MIN + t * (B_MAX - B_MIN)
        return -0.5 * beta * (x + net(x, jnp.full(x.shape[:-1], t, x.dtype)))

    sol = diffrax.diffeqsolve(diffrax.ODETerm(field), diffrax.Tsit5(), jnp.asarray(1.0, x.dtype),
                              jnp.asarray(T_MIN, x.dtype), None, x, args=net,
                              stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol), max_steps=65536)
    return sol.ys[-1], sol.stats["num_steps"]


def machine() -> str:
    return (f"{platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"{jax.devices()[0].platform}; jax {jax.__version__}, diffrax {diffrax.__version__}, "
            f"equinox {eqx.__version__}")


def cases(vp, net, n: int, nfe: int, repeats: int):
    """Rows (name, NFE ours, NFE hand, first ours, first hand, :class:`harness.Paired`)."""
    x1 = vp.prior_sample(n, seed=0, dtype=jnp.float32)
    key = jax.random.PRNGKey(2)
    half = nfe // 2
    em = sample_em(vp, n, steps=nfe, x_init=x1)
    pc = sample_pc(vp, n, steps=half, corrector_steps=1, snr=0.16, x_init=x1)
    ode = sample_ode(vp, n, x_init=x1)
    hand_steps = int(hand_ode(net, x1, 1e-5, 1e-5)[1])
    rows = [
        (f"Euler–Maruyama, {nfe} steps", em.nfe, nfe,
         *paired(lambda: sample_em(vp, n, steps=nfe, x_init=x1).samples, lambda: hand_em(net, x1, key, nfe), repeats)),
        (f"predictor–corrector, {half} steps x (1 + 1)", pc.nfe, 2 * half,
         *paired(lambda: sample_pc(vp, n, steps=half, corrector_steps=1, snr=0.16, x_init=x1).samples,
                 lambda: hand_pc(net, x1, key, half, 0.16), repeats)),
        ("probability-flow ODE, Tsit5 1e-5", ode.nfe, 6 * hand_steps + 1,
         *paired(lambda: sample_ode(vp, n, x_init=x1).samples, lambda: hand_ode(net, x1, 1e-5, 1e-5)[0], repeats)),
    ]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000x500,1000x100", help="comma-separated n x NFE")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "score_jax.md"))
    args = parser.parse_args()

    net = ScoreMLP(2, hidden=64, depth=2, key=jax.random.PRNGKey(1), dtype=jnp.float32)
    vp = sdelang.load(os.path.join(HERE, "..", "examples", "vp.sde")).compile("jax", score=net)
    lines = [
        "# Score-model sampling throughput (JAX)",
        "",
        f"Machine: {machine()}.",
        f"VP SDE, ScoreMLP 2-64-64-2, float32, 2-D; medians of {args.repeats} calls after a warm-up, ours and "
        "hand timed alternately (ratio = median of per-pair ratios); 'first call' includes tracing and XLA "
        "compilation. Ours = the public sampler call from the same x_init (reverse-module construction, "
        "jitted fori_loop with in-graph NFE count); hand = a score_sde-style jitted fori_loop (EM, PC) or diffrax "
        "solve (ODE) on the same network.",
        f"Machine load (1-min average) at the start: {os.getloadavg()[0]:.1f}.",
        "",
        "| n | sampler | NFE ours / hand | ours (s) | hand-written (s) | ratio ours/hand (time) "
        "| quartiles of the ratios | first call ours / hand (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in args.sizes.split(","):
        n, nfe = (int(v) for v in size.lower().split("x"))
        for name, k_ours, k_hand, co, ch, t in cases(vp, net, n, nfe, args.repeats):
            lines.append(f"| {n} | {name} | {k_ours} / {k_hand} | {t.ours:.4f} | {t.reference:.4f} | {t.ratio:.3f}x "
                         f"| {t.ratio_q1:.2f}–{t.ratio_q3:.2f} | {co:.2f} / {ch:.2f} |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
