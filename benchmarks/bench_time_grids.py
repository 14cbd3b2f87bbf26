"""Which time grid each few-step sampler should default to: energy distance at NFE 5 / 10 / 20 on
every grid, with the EXACT score (no training), on VP, sub-VP and VE.

    python benchmarks/bench_time_grids.py [--sdes vp,subvp,ve] [--n 2000] [--out FILE]

Data: eight Gaussians (sdelang.toy_data, radius 1.5, std 0.1). Under a kernel x_t | x_0 ~
N(α_t x_0, σ_t² I) its marginal is p_t = (1/8) Σ_k N(α_t c_k, (0.01 α_t² + σ_t²) I), whose score is
closed form (α, σ: VP B = 0.1 t + 9.95 t², α = e^{-B/2}, σ² = 1 - e^{-B}; sub-VP σ = 1 - e^{-B};
VE σ_max = 10, α = 1, σ² = 0.01² (1000^{2t} - 1); checked against the compiled kernel first).
n samples from one prior draw (seed 0, ×10 for VE) against n exact data draws (seed 1); energy
distance as a V-statistic. sdelang's DEFAULT_GRID (sdelang/score/fast_samplers.py) is the grid
with the lowest geometric mean over the three SDEs at NFE 10 and 20 in this table.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import numpy as np
import torch
from scipy.spatial.distance import cdist

import sdelang
from harness import publish
from sdelang.score import sample
from sdelang.score.fast_samplers import DEFAULT_GRID
from sdelang.toy_data import eight_gaussians

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "examples")
ANGLE = 2 * np.pi * np.arange(8) / 8
CENTRES = torch.tensor(1.5 * np.stack([np.cos(ANGLE), np.sin(ANGLE)], 1), dtype=torch.float64)
METHODS = [("ddim", 1), ("dpm-solver", 2), ("dpm-solver", 3), ("dpm-solver++", 2), ("dpm-solver++", 3),
           ("deis", 2), ("deis", 3), ("heun", 2), ("ancestral", 1), ("ancestral", 2)]
GRIDS = ("uniform", "quadratic", "log-snr", "edm")
NFES = (5, 10, 20)
MODELS = {"vp": ("vp.sde", {}), "subvp": ("subvp.sde", {}), "ve": ("ve.sde", {"sigma_max": 10.0})}


def kernel(sde: str, t):
    """(α_t, σ_t) in closed form."""
    t = torch.as_tensor(t, dtype=torch.float64)
    if sde == "ve":
        return torch.ones_like(t), torch.sqrt(0.01 ** 2 * ((10 / 0.01) ** (2 * t) - 1))
    B = 0.1 * t + 9.95 * t ** 2
    return torch.exp(-B / 2), (torch.sqrt(-torch.expm1(-B)) if sde == "vp" else -torch.expm1(-B))


def exact_score(sde: str):
    def score(x, t):
        a, s = kernel(sde, torch.as_tensor(t, dtype=x.dtype).reshape(-1)[0])
        var = 0.01 * a ** 2 + s ** 2
        diff = a * CENTRES - x[:, None, :]                                    # (n, 8, 2)
        weights = torch.softmax(-(diff ** 2).sum(-1) / (2 * var), dim=1)
        return (weights[..., None] * diff).sum(1) / var
    return score


def stages(method: str, order: int) -> int:
    return order if method == "dpm-solver" else 2 if method == "heun" else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdes", default="vp,subvp,ve")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "time_grids.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    n = args.n
    data = eight_gaussians(n, np.random.default_rng(1))
    dyy = cdist(data, data).mean()

    def energy(x):
        x = np.asarray(x)
        return 2 * cdist(x, data).mean() - cdist(x, x).mean() - dyy if np.all(np.isfinite(x)) else math.nan

    z0 = torch.from_numpy(np.random.default_rng(0).standard_normal((n, 2)))
    start = time.perf_counter()
    results = {}
    for sde in args.sdes.split(","):
        spec, params = MODELS[sde]
        module = sdelang.load(os.path.join(EXAMPLES, spec), **params).compile("torch")
        for t in (0.01, 0.3, 1.0):                   # the closed form is the compiled kernel's
            mean1, std = module.perturbation_kernel(torch.ones(1, 2, dtype=torch.float64), t)
            mean0, _ = module.perturbation_kernel(torch.zeros(1, 2, dtype=torch.float64), t)
            a, s = kernel(sde, t)
            assert abs(float(mean1[0, 0] - mean0[0, 0]) - float(a)) < 1e-8 and abs(float(std[0, 0]) - float(s)) < 1e-6
        x_init = z0 * (10.0 if sde == "ve" else 1.0)
        for method, order in METHODS:
            for grid in GRIDS:
                for nfe in NFES:
                    steps = max(1, round(nfe / stages(method, order)))
                    r = sample(module, n, method, steps=steps, order=order, grid=grid, x_init=x_init.clone(),
                               score=exact_score(sde), dtype=torch.float64, seed=0)
                    results[sde, method, order, grid, nfe] = (energy(r.samples.numpy()), int(r.nfe))
        print(f"{sde} done", flush=True)
    sdes = args.sdes.split(",")
    floor = energy(eight_gaussians(n, np.random.default_rng(2)))
    lines = ["# Time grids of the few-step samplers (exact score, eight Gaussians)", "",
             f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, 1 torch thread; torch {torch.__version__}, "
             f"Python {sys.version.split()[0]}; {time.perf_counter() - start:.0f} s.",
             f"n = {n}, float64; energy distance ×1e3 at NFE 5 / 10 / 20 (measured NFE in brackets where it "
             f"differs); data vs data {1e3 * floor:.2f}. 'best': the lowest geometric mean over "
             f"{', '.join(sdes)} at NFE 10 and 20 of (distance - the lowest distance in the table); "
             "'default': sdelang's DEFAULT_GRID.", ""]
    low = min(v[0] for v in results.values() if math.isfinite(v[0]))
    for sde in sdes:
        lines += [f"## {sde}", "", "| method | " + " | ".join(GRIDS) + " |", "|---|" + "---|" * len(GRIDS)]
        for method, order in METHODS:
            cells = []
            for grid in GRIDS:
                cells.append(" / ".join(f"{1e3 * e:.1f}" + (f" [{k}]" if k != nfe else "")
                                        for nfe in NFES for e, k in [results[sde, method, order, grid, nfe]]))
            lines.append(f"| {method} {order} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Best grid at NFE 10-20", "", "| method | best | default |", "|---|---|---|"]
    for method, order in METHODS:
        def score_of(grid):
            gaps = [results[s, method, order, grid, k][0] - low for s in sdes for k in (10, 20)]
            return math.exp(np.mean(np.log(np.maximum(gaps, 1e-12)))) if all(map(math.isfinite, gaps)) else math.inf
        best = min(GRIDS, key=score_of)
        lines.append(f"| {method} {order} | {best} ({1e3 * score_of(best):.2f}) | {DEFAULT_GRID[method]} "
                     f"({1e3 * score_of(DEFAULT_GRID[method]):.2f}) |")
    publish(lines, args.out)


if __name__ == "__main__":
    main()
