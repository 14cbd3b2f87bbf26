"""``module.simulate`` against a hand-written loop, both backends, two sizes, in one run (medians).

    python benchmarks/bench_simulate.py [--repeats 11] [--conditions idle,loaded] [--out FILE]

Model: Langevin dynamics on the banana target (examples/langevin_banana.sde, b = 0.5),
dx = ∇log p(x)/2 dt + dW, float32, x0 ~ N(0, I), seed 0, dt = 1e-3, ts = [0, steps·dt].
Sizes: 4 096 × 2 particles × 500 steps and 10 000 × 2 × 1 000 steps.
References, the same drift written by hand:
  torch  a Python for-loop, x = x + f(x) dt + √dt·torch.randn (torch.Generator), threads set
         with torch.set_num_threads(n), ours with SDELANG_TORCH_THREADS=n (n = 1, 2);
  JAX    a jitted jax.lax.scan with jax.random.normal(fold_in(key, k)), returning (2, N, 2) like
         simulate.
Each pair runs alternately after one warm-up (harness.paired_medians), so the ratio is measured
under the same load. Condition "loaded" starts one CPU-burning process (``while True: pass``)
for the duration of its measurements and kills it afterwards. The last rows time a small
training-like workload (Adam on a 2-64-64-2 MLP, batch 4 096) with 2 threads against 1.
Target: ours / hand <= 1.05 at both sizes.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import pathlib
import platform
import subprocess
import sys
import time

import torch

from harness import paired_medians, publish

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "langevin_banana.sde"
B = 0.5
DT = 1e-3
SIZES = ((4096, 500), (10_000, 1_000))
THREADS = (1, 2)
TRAIN_STEPS, TRAIN_BATCH = 30, 4096


# ------------------------------------------------------------------------------ torch
def torch_banana_drift(s):
    x, y = s[:, 0], s[:, 1]
    c = B * (x * x - 1)
    return torch.stack([B * x * (y - c) - 0.5 * x, 0.5 * c - 0.5 * y], dim=-1)


def torch_hand_loop(x0, steps, h, seed):
    gen = torch.Generator(device=x0.device).manual_seed(seed)
    sqrt_h = math.sqrt(h)
    s = x0
    for _ in range(steps):
        s = s + torch_banana_drift(s) * h + sqrt_h * torch.randn(s.shape, generator=gen, dtype=s.dtype,
                                                                  device=s.device)
    return torch.stack([x0, s])


@contextlib.contextmanager
def torch_threads(n):
    """torch.set_num_threads(n) for the hand loop and SDELANG_TORCH_THREADS=n for ours."""
    before, env = torch.get_num_threads(), os.environ.get("SDELANG_TORCH_THREADS")
    torch.set_num_threads(n)
    os.environ["SDELANG_TORCH_THREADS"] = str(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if env is None:
            os.environ.pop("SDELANG_TORCH_THREADS", None)
        else:
            os.environ["SDELANG_TORCH_THREADS"] = env


def torch_rows(repeats, condition):
    import sdelang

    module = sdelang.load(SPEC, b=B).compile("torch")
    rows = []
    for n, steps in SIZES:
        x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(1))
        ts = torch.tensor([0.0, steps * DT], dtype=torch.float64)
        for threads in THREADS:
            with torch_threads(threads):
                timing = paired_medians(lambda: module.simulate(x0, ts, DT, seed=0),
                                        lambda: torch_hand_loop(x0, steps, DT, 0), repeats, lambda: None)
            rows.append(("torch", f"{n} × 2 × {steps}", f"{threads}", condition, *timing))
    return rows


def training_row(repeats, condition):
    """Adam on a 2-64-64-2 MLP (batch 4 096, TRAIN_STEPS steps): 2 threads vs 1 thread."""
    def train(threads):
        def run():
            with torch_threads(threads):
                gen = torch.Generator().manual_seed(0)
                net = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.SiLU(), torch.nn.Linear(64, 64),
                                          torch.nn.SiLU(), torch.nn.Linear(64, 2))
                opt = torch.optim.Adam(net.parameters(), 1e-3)
                for _ in range(TRAIN_STEPS):
                    x = torch.randn(TRAIN_BATCH, 2, generator=gen)
                    loss = (net(x) + x).pow(2).mean()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
        return run

    timing = paired_medians(train(2), train(1), max(3, repeats // 2), lambda: None)
    return ("torch training", f"MLP 2-64-64-2, batch {TRAIN_BATCH}, {TRAIN_STEPS} Adam steps", "2 vs 1",
            condition, *timing)


# ------------------------------------------------------------------------------ JAX
def jax_rows(repeats, condition):
    import jax
    import jax.numpy as jnp

    import sdelang

    module = sdelang.load(SPEC, b=B).compile("jax")
    rows = []
    for n, steps in SIZES:
        @jax.jit
        def hand(x0, key, steps=steps):
            def step(s, k):
                x, y = s[:, 0], s[:, 1]
                c = B * (x * x - 1)
                drift = jnp.stack([B * x * (y - c) - 0.5 * x, 0.5 * c - 0.5 * y], axis=-1)
                dw = math.sqrt(DT) * jax.random.normal(jax.random.fold_in(key, k), s.shape, s.dtype)
                return s + drift * DT + dw, None

            y, _ = jax.lax.scan(step, x0, jnp.arange(steps, dtype=jnp.uint32))
            return jnp.stack([x0, y])

        x0 = jax.random.normal(jax.random.PRNGKey(1), (n, 2), jnp.float32)
        key = jax.random.PRNGKey(0)
        ts = [0.0, steps * DT]
        timing = paired_medians(lambda: jax.block_until_ready(module.simulate(x0, ts, DT, seed=0)),
                                lambda: jax.block_until_ready(hand(x0, key)), repeats, lambda: None)
        rows.append(("JAX", f"{n} × 2 × {steps}", "XLA default", condition, *timing))
    return rows


# ------------------------------------------------------------------------------ main
@contextlib.contextmanager
def condition_load(condition):
    """'loaded': one CPU-burning process for the duration of the block."""
    if condition != "loaded":
        yield
        return
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        yield
    finally:
        burner.terminate()
        burner.wait()


def machine() -> str:
    try:
        import jax

        jax_version = f"jax {jax.__version__} ({jax.devices()[0].platform})"
    except ImportError:  # pragma: no cover
        jax_version = "jax absent"
    return (f"{platform.platform()}, processor '{platform.processor() or platform.machine()}', "
            f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}, torch {torch.__version__} "
            f"(default intra-op threads {torch.get_num_threads()}), {jax_version}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--conditions", default="idle,loaded")
    parser.add_argument("--backends", default="torch,jax")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "simulate.md"))
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    rows, loads = [], []
    for condition in args.conditions.split(","):
        with condition_load(condition):
            if "torch" in backends:
                rows += torch_rows(args.repeats, condition)
                rows.append(training_row(args.repeats, condition))
            if "jax" in backends:
                rows += jax_rows(args.repeats, condition)
            loads.append(f"{condition} {os.getloadavg()[0]:.1f}")
    lines = [
        "# simulate vs a hand-written loop",
        "",
        f"Machine: {machine()}.",
        f"Banana Langevin SDE (examples/langevin_banana.sde), float32, dt = {DT}; medians of {args.repeats} "
        "runs of each side, run alternately after one warm-up; ratio = the median of the per-pair ratios (each "
        "pair measured under one load).",
        f"1-min load average at the end of each condition (other users of the machine included): {', '.join(loads)}.",
        "'loaded' adds one CPU-burning process. Absolute times on a shared CPU vary; read the ratios.",
        "",
        "| backend | size (N × d × steps) | threads | condition | ours (s) | hand-written (s) | ratio | quartiles |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend, size, threads, condition, ours, ref, ratio, q1, q3 in rows:
        lines.append(f"| {backend} | {size} | {threads} | {condition} | {ours:.4f} | {ref:.4f} | {ratio:.2f}× | "
                     f"{q1:.2f}–{q3:.2f} |")
    lines += ["", "Training rows: 'ours' is the 2-thread time, 'hand-written' the 1-thread time, ratio = 2 threads / 1 thread."]
    publish(lines, args.out)


if __name__ == "__main__":
    main()
