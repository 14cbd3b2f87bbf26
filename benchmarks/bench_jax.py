"""JAX backend benchmark: generated code vs hand-written JAX for the same SDE, measured in one run.

    python benchmarks/bench_jax.py [--repeats 7] [--out benchmarks/results/jax.md]

Cases (float32, 10 000 particles x 2 states, 1 000 Euler steps, T = 1):
  1. diffrax.diffeqsolve(Euler, UnsafeBrownianPath, ForwardMode) with the generated ``terms`` vs
     hand-written diffrax terms (target ratio <= 1.05);
  2. the generated ``simulate`` vs a hand-written ``jax.lax.scan`` Euler–Maruyama loop with the same
     noise scheme (fold_in per step) (target <= 1.2);
  3. the reverse-time VP SDE with an MLP score (2-64-64-2): ``simulate`` vs a hand-written scan.
Steady-state medians (after a warm-up call) and the first call's compile time are reported apart.
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
import lineax as lx

import sdelang
from harness import publish
from sdelang_jax import ScoreMLP

OU2 = """model OU2 {
    state x[d]
    param d: int = 2
    param theta = 1.0 in (0, inf)
    param sigma = 0.5 in (0, inf)
    dx = -theta * x dt + sigma dW
}
"""
N, STEPS, T = 10_000, 1_000, 1.0
DT = T / STEPS


def timed(fn, repeats):
    """(first-call seconds, median of the following calls)."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


# ------------------------------------------------------------------------------ case 1: diffrax
def diffrax_generated(module, x0, key):
    bm = diffrax.UnsafeBrownianPath(shape=module.brownian_shape(x0.shape[:-1]), key=key)
    sol = diffrax.diffeqsolve(module.terms(bm), diffrax.Euler(), 0.0, T, DT, x0,
                              adjoint=diffrax.ForwardMode(), max_steps=STEPS + 1)
    return sol.ys[-1]


class HandOU(eqx.Module):
    theta: float
    sigma: float

    def drift(self, t, y, args):
        return -self.theta * y

    def diffusion(self, t, y, args):
        return lx.DiagonalLinearOperator(jnp.full_like(y, self.sigma))


def diffrax_hand(module, x0, key):
    bm = diffrax.UnsafeBrownianPath(shape=x0.shape, key=key)
    terms = diffrax.MultiTerm(diffrax.ODETerm(module.drift), diffrax.ControlTerm(module.diffusion, bm))
    sol = diffrax.diffeqsolve(terms, diffrax.Euler(), 0.0, T, DT, x0,
                              adjoint=diffrax.ForwardMode(), max_steps=STEPS + 1)
    return sol.ys[-1]


# ------------------------------------------------------------------------------ case 2/3: scans
@jax.jit
def scan_ou(x0, key, theta, sigma):
    def step(y, k):
        dw = jnp.sqrt(jnp.asarray(DT, y.dtype)) * jax.random.normal(jax.random.fold_in(key, k), y.shape, y.dtype)
        return y + (-theta * y) * DT + sigma * dw, None

    y, _ = jax.lax.scan(step, x0, jnp.arange(STEPS, dtype=jnp.uint32))
    return y


@eqx.filter_jit
def scan_reverse_vp(net, x0, key, beta_min, beta_max):
    """dx = [½β(1-s) x + β(1-s) score(x, 1-s)] ds + √β(1-s) dW, s from 0 to 1 - 1e-3."""
    h = (1.0 - 1e-3) / STEPS

    def step(y, k):
        s = k.astype(y.dtype) * h
        tt = 1.0 - s
        beta = beta_min + tt * (beta_max - beta_min)
        drift = 0.5 * beta * y + beta * net(y, tt)
        dw = jnp.sqrt(jnp.asarray(h, y.dtype)) * jax.random.normal(jax.random.fold_in(key, k), y.shape, y.dtype)
        return y + drift * h + jnp.sqrt(beta) * dw, None

    y, _ = jax.lax.scan(step, x0, jnp.arange(STEPS, dtype=jnp.uint32))
    return y


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"{jax.devices()[0].platform}; jax {jax.__version__}, diffrax {diffrax.__version__}, "
            f"equinox {eqx.__version__}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "jax.md"))
    args = parser.parse_args()

    key = jax.random.PRNGKey(0)
    x0 = jax.random.normal(key, (N, 2), jnp.float32)
    module = sdelang.parse(OU2).compile("jax")
    hand = HandOU(theta=1.0, sigma=0.5)
    rows = []

    gen = eqx.filter_jit(diffrax_generated)
    ref = eqx.filter_jit(diffrax_hand)
    c_gen, t_gen = timed(lambda: gen(module, x0, key), args.repeats)
    c_ref, t_ref = timed(lambda: ref(hand, x0, key), args.repeats)
    rows.append(("diffrax Euler + UnsafeBrownianPath: generated terms vs hand terms", t_gen, t_ref, c_gen, c_ref, 1.05))

    ts = [0.0, T]
    c_sim, t_sim = timed(lambda: module.simulate(x0, ts, DT, seed=0), args.repeats)
    c_scan, t_scan = timed(lambda: scan_ou(x0, key, 1.0, 0.5), args.repeats)
    rows.append(("simulate vs hand-written lax.scan (OU)", t_sim, t_scan, c_sim, c_scan, 1.2))

    net = ScoreMLP(2, hidden=64, depth=2, key=jax.random.PRNGKey(1), dtype=jnp.float32)
    vp = sdelang.load(os.path.join(os.path.dirname(__file__), "..", "examples", "vp.sde")).compile("jax", score=net)
    reverse = vp.reverse()
    span = [0.0, 1.0 - 1e-3]
    c_rsim, t_rsim = timed(lambda: reverse.simulate(x0, span, span[1] / STEPS, seed=0), args.repeats)
    c_rscan, t_rscan = timed(lambda: scan_reverse_vp(net, x0, key, 0.1, 20.0), args.repeats)
    rows.append(("reverse VP + MLP score: simulate vs hand-written lax.scan", t_rsim, t_rscan, c_rsim, c_rscan, 1.2))

    lines = [
        "# JAX backend benchmark",
        "",
        f"Machine: {machine()}.",
        f"{N} particles x 2 states, {STEPS} Euler steps, float32; medians of {args.repeats} calls after a "
        "warm-up; 'first call' includes tracing and XLA compilation.",
        "",
        "| case | generated (s) | hand-written (s) | ratio | target | first call gen / hand (s) |",
        "|---|---|---|---|---|---|",
    ]
    for name, tg, th, cg, ch, target in rows:
        lines.append(f"| {name} | {tg:.4f} | {th:.4f} | {tg / th:.2f}x | <= {target}x | {cg:.2f} / {ch:.2f} |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
