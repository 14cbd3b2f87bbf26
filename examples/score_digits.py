"""Score-based generative modelling of the 8×8 digits that scikit-learn ships, on both backends.

1 797 images, d = 64 (sklearn.datasets.load_digits: no download). Pixel values 0..16 are put on the
8-bit grid, k = round(255 v / 16), x = 2k/255 - 1 ∈ [-1, 1], so that
``bits_per_dim(x, dequantize=True, bits=8)`` applies; shape (N, 1, 8, 8). A fixed split (seed 0)
keeps 600 digits out of training; they are cut into two halves A and B of 300 for the
real-vs-real reference. ``ScoreModel(spec, backend=..., d=64)`` with its DEFAULTS (network and
preconditioning chosen by the facade, no tuning) on the sub-VP SDE (``--sde vp`` for VP) is trained by denoising score matching on the
other 1 197, then sampled by Euler–Maruyama, predictor–corrector, the probability-flow ODE and
DPM-Solver++ (20 steps). For each sampler (300 samples, the size of half A):

- the percentage of pixels outside [-1.1, 1.1] (data lie in [-1, 1]);
- MMD² (unbiased, Gaussian kernel, one bandwidth for every row: the median heuristic on all real
  digits) of the samples against half B, and the same for half A against half B (the "real
  digits" row: what a perfect sampler scores, about 0 ± its sampling spread);
- the ratio MMD²_V(samples, B) / MMD²_V(A, B) of the biased V-statistics: their floor for
  identical laws, (1/n + 1/m)(1 - E k), is positive, so the ratio is about 1 for a perfect sampler
  (the unbiased real-vs-real value fluctuates around 0 and cannot be divided by);
- the energy distance (V-statistic) against half B, next to A against B;
- a classifier's mean confidence: logistic regression trained on the training digits, its mean
  max-probability on the samples and on half A.

Why sub-VP: its σ(t) ≈ ∫β is smaller than VP's √(∫β) at small t (0.10 against 0.32 at t = 0.1),
so uniform training times spend more of the batch where the saturated pixels (about half the
pixels are exactly -1) are resolved; with the same network, steps and seed on JAX, the
probability-flow ODE put 1.22 % of pixels outside [-1.1, 1.1] on VP and 0.46 % on sub-VP, EM
0.48 % and 0.10 % (benchmarks/results/score_digits/).

Then bits/dim of held-out digits (dequantised, 8-bit, Hutchinson trace, a subset: ``--bpd-n``),
once per backend, and a verdict against issue 14's criteria: EM, PC and the ODE each have fewer than
1 % of pixels outside [-1.1, 1.1] and an MMD ratio of at most 2. Image grids (one per sampler and
backend, and one of real digits) and the table (table.md) go to ``--out``.

    python examples/score_digits.py [--backend torch|jax|both] [--sde subvp|vp] [--steps N] [--out out/score_digits]
    python examples/score_digits.py --quick      # a tiny run (seconds), for tests
    torchrun --standalone --nproc_per_node=2 examples/score_digits.py --backend torch   # data-parallel
    (every rank trains on its share of each batch and samples its share; rank 0 prints and writes)
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from sdelang.score.plots import image_grid
from sdelang.score.sample_quality import energy_distance, fraction_outside, median_bandwidth, mmd2, split_halves

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPLIT_SEED = 0
HELD_OUT = 600
RANGE = (-1.1, 1.1)
OUTSIDE_MAX = 0.01      # issue 14: fewer than 1 % of pixels outside RANGE
RATIO_MAX = 2.0         # issue 14: within 2x of the real-vs-real MMD
CRITERION_SAMPLERS = ("em", "pc", "ode")
#: Under torchrun (WORLD_SIZE > 1) every rank trains and samples its share; rank 0 alone prints and writes.
WORLD_SIZE = int(os.environ.get("WORLD_SIZE", "1"))
LEAD = int(os.environ.get("RANK", "0")) == 0


def say(*args, **kwargs) -> None:
    if LEAD:
        print(*args, **kwargs)


@dataclass
class Row:
    label: str
    method: str
    nfe: str
    seconds: float
    outside: float
    mmd2_u: float
    ratio: float
    energy: float
    confidence: float


@dataclass
class BackendReport:
    backend: str
    spec: str
    steps: int
    batch_size: int
    train_seconds: float
    final_loss: float
    rows: List[Row] = field(default_factory=list)
    bpd: float = float("nan")
    bpd_se: float = float("nan")
    bpd_n: int = 0
    bpd_seconds: float = 0.0
    total_seconds: float = 0.0
    grids: Dict[str, str] = field(default_factory=dict)


def load_digits_8bit():
    """(images (N, 1, 8, 8) on the 8-bit grid in [-1, 1], labels (N,))."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    k = np.rint(255.0 * digits.data / 16.0)
    return (2.0 * k / 255.0 - 1.0).reshape(-1, 1, 8, 8), digits.target


def split(images, labels, held_out: int = HELD_OUT, seed: int = SPLIT_SEED):
    order = np.random.default_rng(seed).permutation(len(images))
    test, train = order[:held_out], order[held_out:]
    return images[train], labels[train], images[test], labels[test]


class Reference:
    """Real-data side of every comparison: halves A and B of the held-out digits, one kernel
    bandwidth, and a classifier trained on the training digits."""

    def __init__(self, train, train_labels, held_out):
        from sklearn.linear_model import LogisticRegression

        self.a, self.b = split_halves(held_out, seed=SPLIT_SEED)
        self.bandwidth = median_bandwidth(train, held_out)
        self.classifier = LogisticRegression(max_iter=5000).fit(train.reshape(len(train), -1), train_labels)
        self.mmd2_v_real = mmd2(self.a, self.b, self.bandwidth, unbiased=False)
        self.real = self.row("real digits (held-out half A vs B)", "-", "-", 0.0, self.a)

    def confidence(self, x) -> float:
        x = np.nan_to_num(np.asarray(x, float).reshape(len(x), -1), nan=0.0, posinf=1e3, neginf=-1e3)
        return float(self.classifier.predict_proba(x).max(axis=1).mean())

    def row(self, label, method, nfe, seconds, x) -> Row:
        x = np.asarray(x, float)
        finite = np.nan_to_num(x, nan=0.0, posinf=1e6, neginf=-1e6)
        ratio = mmd2(finite, self.b, self.bandwidth, unbiased=False) / self.mmd2_v_real
        return Row(label, method, str(nfe), seconds, fraction_outside(x, *RANGE), mmd2(finite, self.b, self.bandwidth),
                   ratio, energy_distance(finite, self.b), self.confidence(finite))


def samplers(quick: bool):
    """(label, method, options) for each sampler."""
    if quick:
        return [("Euler–Maruyama, 10 steps", "em", {"steps": 10}),
                ("predictor–corrector, 10 steps", "pc", {"steps": 10}),
                ("probability-flow ODE, rk4, 10 steps", "ode", {"solver": "rk4", "steps": 10}),
                ("DPM-Solver++ (2M), 5 steps", "dpm-solver++", {"steps": 5})]
    return [("Euler–Maruyama, 500 steps", "em", {"steps": 500}),
            ("predictor–corrector (snr 0.16), 500 steps", "pc", {"steps": 500}),
            ("probability-flow ODE (adaptive, default solver)", "ode", {}),
            ("DPM-Solver++ (2M), 20 steps", "dpm-solver++", {"steps": 20})]


def to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def run_backend(backend: str, args, train, reference: Reference, held_out) -> BackendReport:
    if backend == "torch":
        from sdelang_torch import ScoreModel
    else:
        from sdelang_jax import ScoreModel
    spec = os.path.join(HERE, f"{args.sde}.sde")
    start_all = time.perf_counter()
    say(f"\n== {backend}: {os.path.relpath(spec, ROOT)}, ScoreModel defaults, d = 64, "
          f"{args.steps} steps of batch {args.batch_size} on {len(train)} digits")
    model = ScoreModel(spec, backend=backend, d=64, seed=args.seed)
    start = time.perf_counter()
    model.fit(train, steps=args.steps, batch_size=args.batch_size, seed=args.seed, progress=not args.no_progress)
    train_seconds = time.perf_counter() - start
    losses = np.asarray(model.losses, float)
    final_loss = float(losses[-max(1, len(losses) // 10):].mean()) if len(losses) else float("nan")
    say(f"trained in {train_seconds:.1f} s; loss over the last 10 % of steps {final_loss:.4f}")
    report = BackendReport(backend, os.path.relpath(spec, ROOT), args.steps, args.batch_size, train_seconds, final_loss)
    n = len(reference.a)
    for label, method, options in samplers(args.quick):
        start = time.perf_counter()
        result = model.sample(n, method, seed=args.seed + 1, batch_size=args.sample_batch,
                              progress=not args.no_progress, **options)
        seconds = time.perf_counter() - start
        x = to_numpy(result.samples)
        row = reference.row(label, method, result.nfe, seconds, x)
        report.rows.append(row)
        path = os.path.join(args.out, f"{backend}_{method}.png")
        if LEAD:
            report.grids[method] = image_grid(x, path, max_images=100, ncol=10,
                                              title=f"{backend}, {label}: {100 * row.outside:.2f} % outside [-1.1, 1.1]")
        say(f"{label}: NFE {result.nfe}, {seconds:.1f} s, {100 * row.outside:.2f} % outside, "
              f"MMD² {row.mmd2_u:.2e}, ratio {row.ratio:.2f}, grid {os.path.relpath(path)}")
    if args.bpd_n > 0:
        start = time.perf_counter()
        subset = held_out[:args.bpd_n]
        bpd = to_numpy(model.bits_per_dim(subset, dequantize=True, bits=8, batch_size=args.bpd_batch,
                                          progress=not args.no_progress))
        report.bpd_seconds = time.perf_counter() - start
        report.bpd, report.bpd_n = float(bpd.mean()), len(bpd)
        report.bpd_se = float(bpd.std(ddof=1) / np.sqrt(len(bpd))) if len(bpd) > 1 else float("nan")
        say(f"bits/dim of {len(bpd)} held-out digits (dequantised, 8-bit): {report.bpd:.3f} ± {report.bpd_se:.3f} "
              f"({report.bpd_seconds:.1f} s)")
    report.total_seconds = time.perf_counter() - start_all
    return report


def verdict(report: BackendReport) -> str:
    failures = []
    for row in report.rows:
        if row.method not in CRITERION_SAMPLERS:
            continue
        if not row.outside < OUTSIDE_MAX:
            failures.append(f"{row.method}: {100 * row.outside:.2f} % of pixels outside [-1.1, 1.1]")
        if not row.ratio <= RATIO_MAX:
            failures.append(f"{row.method}: MMD ratio {row.ratio:.2f} > {RATIO_MAX:g}")
    if failures:
        return f"{report.backend}: FAILS issue 14's criteria ({'; '.join(failures)})"
    return (f"{report.backend}: meets issue 14's criteria (EM, PC, ODE: < 1 % of pixels outside [-1.1, 1.1], "
            f"MMD ratio ≤ 2)")


def machine() -> str:
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores visible, {platform.system()}, "
            f"Python {platform.python_version()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")


def markdown(reports: List[BackendReport], reference: Reference, args) -> str:
    lines = [f"Digits (8×8, d = 64): {len(reference.a) * 2} held-out digits (halves A, B of {len(reference.a)}), "
             f"samples of {len(reference.a)} per sampler compared with half B; MMD kernel bandwidth "
             f"{reference.bandwidth:.3f} (median heuristic on all real digits). Machine: {machine()}.", ""]
    header = ("| backend | sampler | NFE | seconds | pixels outside [−1.1, 1.1] | MMD² (unbiased) vs held-out | "
              "MMD ratio (V-stat., samples / real) | energy distance | classifier confidence |")
    lines += [header, "|" + "---|" * (header.count("|") - 1)]
    real = reference.real
    lines.append(f"| – | {real.label} | – | – | {100 * real.outside:.2f} % | {real.mmd2_u:.2e} | 1.00 | "
                 f"{real.energy:.4f} | {real.confidence:.3f} |")
    for report in reports:
        for row in report.rows:
            lines.append(f"| {report.backend} | {row.label} | {row.nfe} | {row.seconds:.1f} | {100 * row.outside:.2f} % | "
                         f"{row.mmd2_u:.2e} | {row.ratio:.2f} | {row.energy:.4f} | {row.confidence:.3f} |")
    lines.append("")
    for report in reports:
        bpd = (f"bits/dim of {report.bpd_n} held-out digits (dequantised, 8-bit, Hutchinson) {report.bpd:.3f} ± "
               f"{report.bpd_se:.3f} ({report.bpd_seconds:.0f} s)" if report.bpd_n else "bits/dim not computed")
        lines.append(f"- {report.backend}: {report.spec}, {report.steps} training steps of batch {report.batch_size} "
                     f"in {report.train_seconds:.0f} s (final loss {report.final_loss:.4f}); {bpd}; "
                     f"wall time {report.total_seconds:.0f} s.")
    lines.append("")
    for report in reports:
        lines.append(f"Verdict — {verdict(report)}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> List[BackendReport]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["torch", "jax", "both"], default="both")
    parser.add_argument("--sde", choices=["vp", "subvp"], default="subvp",
                        help="examples/<sde>.sde (default subvp: module docstring)")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default 2000; --quick: 20)")
    parser.add_argument("--batch-size", type=int, default=128, help="training batch size")
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "score_digits"), help="folder for grids and table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bpd-n", type=int, default=None, help="held-out digits for bits/dim (default 100; --quick: 4)")
    parser.add_argument("--bpd-batch", type=int, default=100)
    parser.add_argument("--sample-batch", type=int, default=None, help="sampling batch size (default: all at once)")
    parser.add_argument("--quick", action="store_true", help="a tiny run (seconds) for tests")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    args = parser.parse_args(argv)
    if WORLD_SIZE > 1 and args.backend != "torch":
        say(f"under torchrun (WORLD_SIZE={WORLD_SIZE}): torch only (JAX drives several devices from one process)")
        args.backend = "torch"
    args.no_progress = args.no_progress or not LEAD
    if args.steps is None:
        args.steps = 20 if args.quick else 2000
    if args.bpd_n is None:
        args.bpd_n = 4 if args.quick else 100
    os.makedirs(args.out, exist_ok=True)
    images, labels = load_digits_8bit()
    train, train_labels, held_out, _ = split(images, labels)
    if args.quick:
        train, train_labels, held_out = train[:300], train_labels[:300], held_out[:64]
    reference = Reference(train, train_labels, held_out)
    if LEAD:
        image_grid(reference.a, os.path.join(args.out, "real.png"), max_images=100, ncol=10,
                   title="real digits (held out)")
    backends = ["torch", "jax"] if args.backend == "both" else [args.backend]
    reports = [run_backend(backend, args, train, reference, held_out) for backend in backends]
    table = markdown(reports, reference, args)
    if not LEAD:
        return reports
    path = os.path.join(args.out, "table.md")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(table)
    print("\n" + table)
    print(f"table: {os.path.relpath(path)}; grids: {os.path.relpath(args.out)}/<backend>_<sampler>.png, real.png")
    return reports


if __name__ == "__main__":
    main()
