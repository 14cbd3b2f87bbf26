"""Score-model sampling throughput: sdelang's samplers vs hand-written score_sde-style torch samplers
with the same VP SDE and the same network, measured in the same run (medians, samples per second).

    python benchmarks/bench_score_torch.py [--repeats 5] [--threads 1,2] [--sizes 10000x500,1000x100]
                                           [--device cpu|cuda] [--out FILE]

Cases (float32, VP β ∈ [0.1, 20], ScoreMLP 2 → 128 → 128 → 128 → 2, n samples, t_min = 1e-3, NFE k):
  1. Euler–Maruyama on the reverse SDE, k steps;
  2. predictor–corrector, k/2 steps, 1 Langevin corrector step, snr 0.16 (NFE k);
  3. probability-flow ODE, torchdiffeq dopri5, rtol = atol = 1e-5 (NFE as counted).
The hand-written samplers follow score_sde (Song et al. 2021): x ← x - [f - g² s] Δt + g √Δt z with
f = -½ β(t) x, g = √β(t); the Langevin step ε = 2 α (snr ‖z‖/‖s‖)², α = exp(-β(t) Δt).
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys

import torch
import torchdiffeq

import sdelang
from harness import paired_medians, publish

from sdelang_torch import ScoreMLP
from sdelang_torch import sample_em, sample_ode, sample_pc

BETA_MIN, BETA_MAX, T_MIN = 0.1, 20.0, 1e-3
N, EM_STEPS, PC_STEPS = 10_000, 500, 250
SPEC = os.path.join(os.path.dirname(__file__), "..", "examples", "vp.sde")


def beta(t: float) -> float:
    return BETA_MIN + t * (BETA_MAX - BETA_MIN)


def hand_em(net, x, steps, seed):
    """score_sde's EulerMaruyamaPredictor on the VP reverse SDE, last step without noise."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    h = (1.0 - T_MIN) / steps
    for i in range(steps):
        t = 1.0 - i * h
        b = beta(t)
        score = net(x, x.new_full((x.shape[0],), t))
        x_mean = x + (0.5 * b * x + b * score) * h
        x = x_mean if i == steps - 1 else x_mean + math.sqrt(b * h) * torch.randn(
            x.shape, generator=gen, dtype=x.dtype, device=x.device)
    return x


def hand_pc(net, x, steps, seed, snr=0.16):
    """score_sde's LangevinCorrector + ReverseDiffusionPredictor (generic discretisation)."""
    gen = torch.Generator(device=x.device).manual_seed(seed)
    h = (1.0 - T_MIN) / steps
    for i in range(steps):
        t = 1.0 - i * h
        b = beta(t)
        tv = x.new_full((x.shape[0],), t)
        grad = net(x, tv)
        z = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        eps = 2 * math.exp(-b * h) * (snr * z.norm(dim=-1).mean() / grad.norm(dim=-1).mean()) ** 2
        x = x + eps * grad + torch.sqrt(2 * eps) * z
        score = net(x, tv)
        x_mean = x + (0.5 * b * x + b * score) * h
        x = x_mean if i == steps - 1 else x_mean + math.sqrt(b * h) * torch.randn(
            x.shape, generator=gen, dtype=x.dtype, device=x.device)
    return x


class HandFlow(torch.nn.Module):
    """dx/dt = -½ β(t) (x + s(x, t)), counting its evaluations."""

    def __init__(self, net):
        super().__init__()
        self.net, self.calls = net, 0

    def forward(self, t, x):
        self.calls += 1
        b = BETA_MIN + t * (BETA_MAX - BETA_MIN)
        return -0.5 * b * (x + self.net(x, t))


def hand_ode(net, x):
    flow = HandFlow(net)
    ts = torch.tensor([1.0, T_MIN], dtype=x.dtype, device=x.device)
    out = torchdiffeq.odeint(flow, x, ts, rtol=1e-5, atol=1e-5, method="dopri5", options={"step_t": ts[-1:]})
    return out[-1], flow.calls


def cases(net, module, n: int, nfe: int, repeats: int, device, sync):
    """Rows (case, NFE ours, NFE hand, :class:`harness.Paired` timing) for n samples at NFE ``nfe``."""
    x1 = module.prior_sample(n, seed=0, device=device)
    half = nfe // 2
    nfe_of = {}

    def ours(name, call):
        def run():
            nfe_of[name] = call().nfe
        return run

    def theirs_ode():
        nfe_of["hand ode"] = hand_ode(net, x1)[1]

    rows = []
    with torch.no_grad():
        t = paired_medians(ours("em", lambda: sample_em(module, n, nfe, x_init=x1, device=device)),
                           lambda: hand_em(net, x1, nfe, 0), repeats, sync)
        rows.append((f"Euler–Maruyama, {nfe} steps", nfe_of["em"], nfe, t))
        t = paired_medians(ours("pc", lambda: sample_pc(module, n, half, x_init=x1, device=device)),
                           lambda: hand_pc(net, x1, half, 0), repeats, sync)
        rows.append((f"PC, {half} steps + 1 corrector", nfe_of["pc"], 2 * half, t))
        t = paired_medians(ours("ode", lambda: sample_ode(module, n, x_init=x1, device=device)), theirs_ode, repeats, sync)
        rows.append(("probability-flow ODE, dopri5 1e-5", nfe_of["ode"], nfe_of["hand ode"], t))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default=f"{N}x{EM_STEPS},1000x100", help="comma-separated n x NFE")
    parser.add_argument("--threads", default="1,2", help="comma-separated torch CPU thread counts to run with")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "score_torch.md"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    net = ScoreMLP(2, hidden=128, depth=3).to(device).eval()
    module = sdelang.load(SPEC).compile("torch", score=net)
    machine = (f"{platform.platform()}, processor '{platform.processor() or platform.machine()}', "
               f"{os.cpu_count()} CPUs, device {device}"
               + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
               + f"; torch {torch.__version__}, torchdiffeq {getattr(torchdiffeq, '__version__', '?')}, "
               f"Python {sys.version.split()[0]}")
    lines = [
        "# Score-model sampling throughput (torch)",
        "",
        f"Machine: {machine}.",
        "VP SDE, ScoreMLP 2-128-128-128-2 (untrained; the cost does not depend on the weights), float32, "
        f"medians of {args.repeats} runs of each side ({3 * args.repeats} below 10⁶ particle-steps), run "
        "alternately after one warm-up; ratio = the median of the per-pair ratios; ours starts from the "
        "same x_init as the hand loop. The thread count is fixed for both sides (SDELANG_TORCH_THREADS).",
        f"Machine load (1-min average) at the start: {os.getloadavg()[0]:.1f}; the ratios are measured in the same run.",
        "",
        "| threads | n | sampler | ours NFE | ours s | hand NFE | hand s | time ratio ours/hand | quartiles of the ratios |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for threads in (int(v) for v in args.threads.split(",")):
        torch.set_num_threads(threads)
        os.environ["SDELANG_TORCH_THREADS"] = str(threads)
        for size in args.sizes.split(","):
            n, nfe = (int(v) for v in size.lower().split("x"))
            repeats = args.repeats if n * nfe > 10 ** 6 else 3 * args.repeats     # small cases: more pairs
            for case, nfe_ours, nfe_hand, t in cases(net, module, n, nfe, repeats, device, sync):
                lines.append(f"| {threads} | {n} | {case} | {nfe_ours} | {t.ours:.3f} | {nfe_hand} | {t.reference:.3f} | "
                             f"{t.ratio:.3f} | {t.ratio_q1:.2f}–{t.ratio_q3:.2f} |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
