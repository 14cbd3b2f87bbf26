"""Torch backend timings against hand-written code, measured in the same run (medians).

    python benchmarks/bench_torch.py [--repeats 7] [--threads 1] [--device cpu|cuda] [--out FILE]

Cases (float32):
  1. OU, 10 000 × 2 particles (elementwise x[2]), 1 000 Euler steps:
     generated module in torchsde.sdeint vs a hand-written torchsde module (same method, same
     BrownianInterval with dt given); generated ``simulate`` vs a hand-written fused torch loop
     and vs torchsde.sdeint.
  2. VP reverse SDE with an MLP score (2 -> 64 -> 64 -> 2), 10 000 particles, 200 steps:
     generated ``simulate`` vs a hand-written loop calling the same network.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys

import sympy
import torch
import torchsde
from sympy import Matrix, Symbol, sqrt

from harness import paired_medians, publish

from sdelang.model import Distribution, Model, Net, Param, net_output
from sdelang_torch import ScoreMLP, backend

THETA, SIGMA = 1.0, 0.5
BATCH, STEPS, DT = 10_000, 1_000, 1e-3
MLP_STEPS = 200  # the MLP dominates each step; 200 steps keep the run short on a 2-core CPU


def ou_model() -> Model:
    x, th, s = Symbol("x"), Symbol("theta"), Symbol("sigma")
    return Model("OU", (x,), Matrix([-th * x]), Matrix([[s]]), (Symbol("W"),),
                 parameters=(Param(Symbol("d"), sympy.Integer(2), None, True), Param(th, sympy.Float(THETA)),
                             Param(s, sympy.Float(SIGMA))), dimension=Symbol("d"))


def vp_reverse_model() -> Model:
    """The VP reverse SDE written out (s = 1 - t): dx = [½β x + β score(x, 1 - s)] ds + √β dW."""
    x, s = Symbol("x"), Symbol("s")
    beta = 0.1 + (1 - s) * (20.0 - 0.1)
    score = net_output("score", 0, 1 - s, (x,))
    return Model("VPReverse", (x,), Matrix([beta * x / 2 + beta * score]), Matrix([[sqrt(beta)]]), (Symbol("W"),),
                 time=s, parameters=(Param(Symbol("d"), sympy.Integer(2), None, True),), dimension=Symbol("d"),
                 nets=(Net("score", ("x", "t")),), init=(("x", Distribution("normal", 0, 1)),))


class HandOU(torch.nn.Module):
    """dx = -θ x dt + σ dW written by hand for torchsde (diagonal noise)."""

    noise_type = "diagonal"
    sde_type = "ito"

    def f(self, t, y):
        return -THETA * y

    def g(self, t, y):
        return torch.full_like(y, SIGMA)


def hand_ou_loop(x0, steps, h, seed):
    gen = torch.Generator(device=x0.device).manual_seed(seed)
    y = x0
    sqrt_h = math.sqrt(h)
    for _ in range(steps):
        y = y - THETA * h * y + SIGMA * sqrt_h * torch.randn(y.shape, generator=gen, dtype=y.dtype, device=y.device)
    return y


def hand_vp_reverse_loop(net, x0, steps, h, seed):
    gen = torch.Generator(device=x0.device).manual_seed(seed)
    y = x0
    for k in range(steps):
        s = k * h
        beta = 0.1 + (1 - s) * (20.0 - 0.1)
        score = net(y, y.new_full((), 1 - s))
        dW = torch.randn(y.shape, generator=gen, dtype=y.dtype, device=y.device) * math.sqrt(h)
        y = y + h * (0.5 * beta * y + beta * score) + math.sqrt(beta) * dW
    return y


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "torch.md"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)

    x0 = torch.randn(BATCH, 2, device=device)
    ts = torch.tensor([0.0, STEPS * DT], dtype=torch.float64)  # float64 times on the host (BACKEND_NOTES)
    generated = backend.compile(ou_model()).to(device)
    hand = HandOU().to(device)

    def sdeint(module):
        bm = torchsde.BrownianInterval(0.0, STEPS * DT, size=(BATCH, 2), dt=DT, entropy=0, device=device,
                                       dtype=torch.float32)
        return torchsde.sdeint(module, x0, ts, method="euler", dt=DT, bm=bm)

    rows = []
    rows.append(("OU x[2], torchsde.sdeint euler (BrownianInterval dt)", "generated module",
                 "hand-written torchsde module",
                 paired_medians(lambda: sdeint(generated), lambda: sdeint(hand), args.repeats, sync)))
    rows.append(("OU x[2], fixed-step EM", "generated simulate", "hand-written torch loop",
                 paired_medians(lambda: generated.simulate(x0, ts, DT, seed=0),
                                lambda: hand_ou_loop(x0, STEPS, DT, 0), args.repeats, sync)))
    rows.append(("OU x[2], fixed-step EM", "generated simulate", "torchsde.sdeint (generated module)",
                 paired_medians(lambda: generated.simulate(x0, ts, DT, seed=0), lambda: sdeint(generated),
                                args.repeats, sync)))

    torch.manual_seed(0)
    net = ScoreMLP(2, hidden=64, depth=2).to(device)
    rev = backend.compile(vp_reverse_model(), score=net).to(device)
    ts_rev = torch.tensor([0.0, 1.0 - 1e-3], dtype=torch.float64)
    h = (1.0 - 1e-3) / MLP_STEPS
    with torch.no_grad():
        mlp = paired_medians(lambda: rev.simulate(x0, ts_rev, h * (1 + 1e-9), seed=0),
                             lambda: hand_vp_reverse_loop(net, x0, MLP_STEPS, h, 0), args.repeats, sync)
    rows.append((f"VP reverse, MLP score 2-64-64-2, {MLP_STEPS} steps", "generated simulate",
                 "hand-written torch loop", mlp))

    machine = (f"{platform.platform()}, processor '{platform.processor() or platform.machine()}', "
               f"{os.cpu_count()} CPUs, device {device}"
               + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
               + f"; torch {torch.__version__}, torchsde {getattr(torchsde, '__version__', '?')}, "
               f"Python {sys.version.split()[0]}; torch threads {torch.get_num_threads()}")
    lines = [
        "# torch backend benchmark",
        "",
        f"Machine: {machine}.",
        f"Batch {BATCH} × 2, {STEPS} steps, float32, medians of {args.repeats} runs of each side, run "
        "alternately after one warm-up (harness.paired_medians); ratio = the median of the per-pair ratios.",
        f"Machine load (1-min average) at the end: {os.getloadavg()[0]:.1f}; absolute times on a shared CPU vary,",
        "the ratios are measured in the same run.",
        "",
        "| case | ours | s | reference | s | ratio (median of pairs) | quartiles |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, ours, ref, t in rows:
        lines.append(f"| {case} | {ours} | {t.ours:.3f} | {ref} | {t.reference:.3f} | {t.ratio:.2f}× | "
                     f"{t.ratio_q1:.2f}–{t.ratio_q3:.2f} |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
