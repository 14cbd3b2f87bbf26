"""Sample quality versus NFE of the few-step samplers (DDIM, DPM-Solver, DPM-Solver++, DEIS, Heun,
ancestral) on trained 2-D toy score models, against dopri5 and 500-step Euler–Maruyama references.

    python benchmarks/bench_sampler_quality.py [--n 2000] [--train-steps 3000] [--nfe 5,10,20,50]
        [--datasets eight_gaussians,checkerboard] [--sdes vp,cld] [--out FILE] [--plot FILE] [--quick]

--quick is a smoke run (n 256, 200 training steps, eight Gaussians; writes nothing unless --out or
--plot is given), about 15 s. The default run takes about 2 minutes on 2 CPU cores.

Models (torch, float32, one score net per data set and SDE, trained with the same seed):
  - VP: examples/vp.sde (β ∈ [0.1, 20]) on the 2-D data x;
  - CLD: examples/cld2d.sde (critically-damped Langevin, M = 0.25, Γ = 1, β = 4; four scalar states
    x1, x2, v1, v2). The data of a CLD model is its full state (x, v0): x from the toy data and
    v0 ~ N(0, γ M I) with γ = 0.04 (the initial velocity of Dockhorn et al. 2022), drawn with its
    own seed. Energy distances are measured on the x components only.
Training: ``sdelang_torch.ScoreModel(spec, hidden=128, depth=3, seed=0)`` (ScoreMLP with Fourier
time features sin/cos(ω_k t), preconditioned by the kernel where it is diagonal, i.e. VP; the coupled CLD kernel
gets the plain MLP), denoising score matching on 20 000 points (seed 0), Adam lr 2e-3, batch 256,
EMA 0.999; sampling uses the EMA net.

Sampling: every method from the same prior draw ``x_init`` (seed 0) to t0 + t_min = 1e-3, without a
final denoising step, on each method's default time grid (grid=None; the header names them, read
from sdelang.score.fast_samplers.DEFAULT_GRID / COUPLED_GRID). For a target NFE k the sampler takes
steps = round(k / stages), halves rounded up (stages: dpm-solver = order, heun = 2, else 1), and the
table reports the NFE the sampler measured where it differs from k. On CLD's coupled kernel
dpm-solver (singlestep) and ancestral order 2 raise ValueError and are skipped.
References: the probability-flow ODE by dopri5 (rtol = atol = 1e-5, its NFE as measured) and
Euler–Maruyama on the reverse SDE with 500 steps (last step without noise), from the same x_init.

Energy distance: the V-statistic 2 E|X - Y| - E|X - X'| - E|Y - Y'| (all pairs, i = j included;
numpy/scipy cdist, float64) between the n samples and n fresh data points (seed 1). Its floor,
"data vs data", is the same statistic between two independent fresh data sets (seeds 1 and 2): the
score of a perfect sampler at this n (the V-statistic is biased upwards by O(1/n)); its spread over
four more independent pairs shows how much of a difference between two cells is sampling noise.
Wall time: one timed call per cell (after one warm-up call per model), divided by n, 1 torch thread.

The untrained net is checked for time aliasing (its output at t1 equal to that at t0, as the old
period-1 features 2πk gave); the results carry a caveat only when that is detected. Rows whose energy
distances are identical at every NFE (the same samples) are listed under each table.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time

import numpy as np
import scipy
import scipy.spatial
import torch

import sdelang
from harness import publish
from sdelang.score.fast_samplers import COUPLED_GRID, DEFAULT_GRID
from sdelang.score.time_features import fourier_frequencies
from sdelang.toy_data import sample_toy
from sdelang_torch import ScoreModel, sample

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "examples")
SPECS = {"vp": "vp.sde", "cld": "cld2d.sde"}
DATASETS = ("eight_gaussians", "checkerboard")
NFES = (5, 10, 20, 50)
GAMMA = 0.04                      # CLD initial velocity v0 ~ N(0, GAMMA * M I)
TRAIN_POINTS, T_MIN, EM_STEPS, ODE_TOL = 20_000, 1e-3, 500, 1e-5
CLIP = 10.0                       # the plot's energy-distance axis ends here
#: (method, order) rows, in table order.
METHODS = (("ddim", 1), ("dpm-solver", 1), ("dpm-solver", 2), ("dpm-solver", 3), ("dpm-solver++", 1),
           ("dpm-solver++", 2), ("dpm-solver++", 3), ("deis", 1), ("deis", 2), ("deis", 3), ("heun", 2),
           ("ancestral", 1), ("ancestral", 2))


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """V-statistic 2 E|X-Y| - E|X-X'| - E|Y-Y'| over all pairs (i = j included), float64."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    cd = scipy.spatial.distance.cdist
    return float(2 * cd(x, y).mean() - cd(x, x).mean() - cd(y, y).mean())


def stages(method: str, order: int) -> int:
    return order if method == "dpm-solver" else 2 if method == "heun" else 1


def steps_for(nfe: int, method: str, order: int) -> int:
    """round(nfe / stages), halves up, at least 1."""
    return max(1, int(math.floor(nfe / stages(method, order) + 0.5)))


def time_aliasing(net, module) -> float:
    """max |s(x, t1) - s(x, t0)| / max |s(x, t1)| of the untrained raw network at a few x (about 0
    when its time features cannot tell t1 from t0)."""
    x = torch.randn(16, module.dimension, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = net(x, float(module.t1)), net(x, float(module.t0))
    return float((a - b).abs().max() / a.abs().max().clamp_min(1e-30))


def training_data(dataset: str, sde: str, n: int, seed: int, M: float) -> np.ndarray:
    x = sample_toy(dataset, n, seed=seed)
    if sde == "vp":
        return x
    v0 = math.sqrt(GAMMA * M) * np.random.default_rng(seed + 1000).standard_normal(x.shape)
    return np.concatenate([x, v0], axis=1)     # state order x1, x2, v1, v2


def timed(call):
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def evaluate(name, result, seconds, fresh, n, log):
    """(energy distance or nan, measured NFE, µs per sample, note)."""
    x = result.samples.detach().cpu().double().numpy()[:, :2]
    finite = np.isfinite(x).all(axis=1)
    note = ""
    if not finite.all():
        note = f"{int((~finite).sum())} of {n} samples not finite"
        log(f"  !! {name}: {note}")
        return math.nan, int(result.nfe), 1e6 * seconds / n, note
    return energy_distance(x, fresh), int(result.nfe), 1e6 * seconds / n, note


def run_model(dataset: str, sde: str, args, log) -> dict:
    spec = os.path.join(EXAMPLES, SPECS[sde])
    M = float(sdelang.load(spec).param_values["M"]) if sde == "cld" else 0.0
    data = training_data(dataset, sde, TRAIN_POINTS, 0, M)
    fresh = sample_toy(dataset, args.n, seed=1)
    floor = energy_distance(sample_toy(dataset, args.n, seed=2), fresh)
    spread = [energy_distance(sample_toy(dataset, args.n, seed=a), sample_toy(dataset, args.n, seed=a + 1))
              for a in (3, 5, 7, 9)]
    log(f"== {dataset} / {sde}: training {args.train_steps} steps on {data.shape}")
    model = ScoreModel(spec, hidden=128, depth=3, seed=0)
    raw = model.initial_net.net if hasattr(model.initial_net, "kernel_module") else model.initial_net
    aliasing = time_aliasing(raw, model.module)
    log(f"   time aliasing of the untrained net (relative |s(t1) - s(t0)|; caveat below 1e-5): {aliasing:.2g}")
    _, train_s = timed(lambda: model.fit(data, steps=args.train_steps, batch_size=256, lr=2e-3, ema_decay=0.999,
                                         seed=0, progress=False))
    log(f"   trained in {train_s:.1f} s; DSM loss last 500 steps {np.mean(model.losses[-500:]):.4f}")
    module, net = model.module, model.score_net()
    x_init = module.prior_sample(args.n, seed=0)
    common = dict(x_init=x_init, score=net, t_min=T_MIN, seed=0)
    sample(module, args.n, "ddim", steps=5, **common)        # warm-up
    cells, skipped, errors = {}, [], []
    for method, order in METHODS:
        for nfe in args.nfe:
            steps = steps_for(nfe, method, order)
            try:
                result, seconds = timed(lambda: sample(module, args.n, method, steps=steps, order=order, **common))
            except ValueError as exc:
                if "diagonal perturbation kernel" in str(exc) or "couples its states" in str(exc):
                    skipped.append((method, order))
                    break
                errors.append(f"{method} order {order}, steps {steps}: {type(exc).__name__}: {exc}")
                log(f"  !! {errors[-1]}")
                continue
            except Exception as exc:  # noqa: BLE001 - reported in the table, not fatal
                errors.append(f"{method} order {order}, steps {steps}: {type(exc).__name__}: {exc}")
                log(f"  !! {errors[-1]}")
                continue
            cells[(method, order, nfe)] = evaluate(f"{method}/{order}/{nfe}", result, seconds, fresh, args.n, log)
        if (method, order) not in skipped:
            row = " ".join(f"{cells[(method, order, k)][0]:.4f}({cells[(method, order, k)][1]})"
                           for k in args.nfe if (method, order, k) in cells)
            log(f"   {method:<13} order {order}: {row}")
    ode, ode_s = timed(lambda: sample(module, args.n, "ode", rtol=ODE_TOL, atol=ODE_TOL, **common))
    refs = {"ode": evaluate("ode", ode, ode_s, fresh, args.n, log)}
    em, em_s = timed(lambda: sample(module, args.n, "em", steps=EM_STEPS, **common))
    refs["em"] = evaluate("em", em, em_s, fresh, args.n, log)
    log(f"   dopri5 {refs['ode'][0]:.4f} (NFE {refs['ode'][1]}), EM-{EM_STEPS} {refs['em'][0]:.4f}, "
        f"data vs data {floor:.4f}")
    return dict(dataset=dataset, sde=sde, cells=cells, refs=refs, floor=floor, skipped=skipped, errors=errors,
                train_s=train_s, aliasing=aliasing, spread=(min(spread), max(spread)),
                loss=float(np.mean(model.losses[-500:])))


def fmt(value: float) -> str:
    return "NaN" if not math.isfinite(value) else f"{value:.4f}" if value >= 1e-3 else f"{value:.2e}"


def best_at(res: dict, nfe: int):
    """(method, order, ed, measured nfe) with the lowest energy distance at target ``nfe`` among the
    runs whose measured NFE is at most ``nfe``."""
    best = None
    for (method, order, k), (ed, measured, _, _) in res["cells"].items():
        if k == nfe and measured <= nfe and math.isfinite(ed) and (best is None or ed < best[2]):
            best = (method, order, ed, measured)
    return best


def identical_rows(res: dict, nfes) -> list:
    """Groups of (method, order) rows whose energy distances agree to a relative 1e-4 at every
    target NFE (the same update on the same grid, rounded differently in float32)."""
    groups = []                   # [(energy distances of the first row, rows)]
    for method, order in METHODS:
        eds = [res["cells"].get((method, order, k), (math.nan,))[0] for k in nfes]
        if not all(math.isfinite(v) for v in eds):
            continue
        for first, rows in groups:
            if all(math.isclose(a, b, rel_tol=1e-4) for a, b in zip(first, eds)):
                rows.append((method, order))
                break
        else:
            groups.append((eds, [(method, order)]))
    return [rows for _, rows in groups if len(rows) > 1]


def table(res: dict, nfes) -> list:
    lines = [f"## {res['dataset']}, {res['sde'].upper()} ({SPECS[res['sde']]})", "",
             f"Trained in {res['train_s']:.0f} s (DSM loss, mean of the last 500 steps: {res['loss']:.4f}). "
             "Energy distance to fresh data (V-statistic, x components); in parentheses the measured NFE "
             "where it differs from the column's target. µs/sample: wall time of one call / n, "
             "at each target NFE.", "",
             "| method | order | " + " | ".join(f"NFE {k}" for k in nfes) + " | µs/sample (" + "/".join(map(str, nfes))
             + ") |", "|---|---|" + "---|" * len(nfes) + "---|"]
    for method, order in METHODS:
        if (method, order) in res["skipped"]:
            continue
        cells, times = [], []
        for k in nfes:
            if (method, order, k) not in res["cells"]:
                cells.append("error")
                times.append("—")
                continue
            ed, measured, us, _ = res["cells"][(method, order, k)]
            cells.append(fmt(ed) + ("" if measured == k else f" ({measured})"))
            times.append(f"{us:.0f}")
        lines.append(f"| {method} | {order} | " + " | ".join(cells) + " | " + "/".join(times) + " |")
    empty = " |" * (len(nfes) - 1)
    ode, em = res["refs"]["ode"], res["refs"]["em"]
    lines.append(f"| **dopri5**, rtol = atol = 1e-5 | — | {fmt(ode[0])} (NFE {ode[1]}) |{empty} {ode[2]:.0f} |")
    lines.append(f"| **Euler–Maruyama**, {EM_STEPS} steps | — | {fmt(em[0])} (NFE {em[1]}) |{empty} {em[2]:.0f} |")
    low, high = res["spread"]
    lines.append(f"| data vs data (floor) | — | {fmt(res['floor'])} ({fmt(low)}–{fmt(high)} "
                 f"for 4 other pairs) |{empty} — |")
    lines.append("")
    if 10 in nfes:
        best = best_at(res, 10)
        if best is not None and math.isfinite(ode[0]):
            ratio = best[2] / ode[0]
            lines.append(f"Best at NFE 10 / dopri5: {best[0]} order {best[1]} {fmt(best[2])} (NFE {best[3]}) / "
                         f"{fmt(ode[0])} (NFE {ode[1]}) = **{ratio:.2f}×** (criterion ≤ 1.5×: "
                         f"{'met' if ratio <= 1.5 else 'not met'}).")
            lines.append("")
    same = identical_rows(res, nfes)
    if same:
        lines.append("Identical rows (energy distances equal to a relative 1e-4 at every NFE: the same update "
                     "on the same grid): " + "; ".join(" = ".join(f"{m} {o}" for m, o in g) for g in same) + ".")
        lines.append("")
    if res["skipped"]:
        lines.append("Not available on this model's coupled kernel (ValueError, skipped): "
                     + ", ".join(f"{m} order {o}" for m, o in res["skipped"]) + ".")
        lines.append("")
    for err in res["errors"]:
        lines.append(f"Error: {err}")
    notes = [f"{m} order {o} NFE {k}: {v[3]}" for (m, o, k), v in res["cells"].items() if v[3]]
    notes += [f"{name}: {v[3]}" for name, v in res["refs"].items() if v[3]]
    for note in notes:
        lines.append(f"Non-finite: {note}.")
    if res["errors"] or notes:
        lines.append("")
    return lines


def plot(results: list, nfes, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    sdes = list(dict.fromkeys(r["sde"] for r in results))
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(len(datasets), len(sdes), figsize=(6.2 * len(sdes), 4.6 * len(datasets)),
                             squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(m for m, _ in METHODS))}
    styles = {1: ("-", "o"), 2: ("--", "s"), 3: (":", "^")}
    for res in results:
        ax = axes[datasets.index(res["dataset"])][sdes.index(res["sde"])]
        for method, order in METHODS:
            pts = [(v[1], v[0]) for (m, o, k), v in sorted(res["cells"].items(), key=lambda kv: kv[0][2])
                   if m == method and o == order and math.isfinite(v[0]) and v[0] > 0]
            if pts:
                ls, marker = styles[order]
                ax.plot(*zip(*pts), ls=ls, marker=marker, ms=4, color=colors[method], label=f"{method} {order}")
        ode, em = res["refs"]["ode"], res["refs"]["em"]
        ax.axhline(ode[0], color="k", ls="--", lw=1.2, label=f"dopri5 1e-5 (NFE {ode[1]})")
        ax.axhline(em[0], color="0.45", ls=":", lw=1.2, label=f"EM {EM_STEPS}")
        ax.axhline(res["floor"], color="0.7", ls="-.", lw=1, label="data vs data")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(list(nfes))
        ax.set_xticklabels([str(k) for k in nfes])
        ax.xaxis.set_minor_formatter(NullFormatter())
        low, high = ax.get_ylim()
        clipped = high > CLIP
        if clipped:
            ax.set_ylim(low, CLIP)
        ax.set_xlabel("NFE (measured)")
        ax.set_ylabel("energy distance")
        ax.set_title(f"{res['dataset']}, {res['sde'].upper()}"
                     + (f" (above {CLIP:g}: off the scale)" if clipped else ""))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6.5, ncol=2)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="samples per cell (and fresh data points)")
    parser.add_argument("--train-steps", type=int, default=3000)
    parser.add_argument("--nfe", default=",".join(map(str, NFES)), help="comma-separated target NFEs")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--sdes", default="vp,cld")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "sampler_quality.md"))
    parser.add_argument("--plot", default=os.path.join(HERE, "results", "sampler_quality.png"),
                        help="PNG path ('' for none)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: n 256, 200 training steps, eight_gaussians only, nothing written "
                             "unless --out/--plot are given")
    args = parser.parse_args(argv)
    if args.quick:
        given = set(a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:]))
        args.n, args.train_steps = (args.n if "--n" in given else 256,
                                    args.train_steps if "--train-steps" in given else 200)
        if "--datasets" not in given:
            args.datasets = "eight_gaussians"
        if "--out" not in given:
            args.out = ""
        if "--plot" not in given:
            args.plot = ""
    args.nfe = [int(v) for v in args.nfe.split(",")]
    datasets = [d for d in args.datasets.split(",") if d]
    sdes = [s for s in args.sdes.split(",") if s]
    for s in sdes:
        if s not in SPECS:
            parser.error(f"--sdes: unknown SDE {s!r}; choose from {sorted(SPECS)}")
    torch.set_num_threads(1)
    os.environ.setdefault("SDELANG_TORCH_THREADS", "1")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    start = time.perf_counter()
    load = os.getloadavg()[0]
    results = [run_model(d, s, args, log) for d in datasets for s in sdes]
    total = time.perf_counter() - start
    import matplotlib

    machine = (f"{platform.platform()}, processor '{platform.processor() or platform.machine()}', "
               f"{os.cpu_count()} CPUs, 1 torch thread; torch {torch.__version__}, numpy {np.__version__}, "
               f"scipy {scipy.__version__}, matplotlib {matplotlib.__version__}, sdelang "
               f"{getattr(sdelang, '__version__', '?')}, Python {sys.version.split()[0]}")
    grids = ", ".join(f"{m} {g}" for m, g in DEFAULT_GRID.items())
    coupled = f"every method {COUPLED_GRID}"
    omega = ", ".join(f"{w / math.pi:g}π" for w in fourier_frequencies()[:3])
    lines = [
        "# Sample quality versus NFE of the few-step samplers (torch)",
        "",
        f"Machine: {machine}. Load (1-min average) at the start: {load:.1f}. "
        f"Whole run (training included): {total:.0f} s.",
        "",
        f"Command: `python benchmarks/bench_sampler_quality.py --n {args.n} --train-steps {args.train_steps} "
        f"--nfe {','.join(map(str, args.nfe))} --datasets {','.join(datasets)} --sdes {','.join(sdes)}`.",
        "",
        f"n = {args.n} samples per cell from one prior draw (seed 0) per model, t_min = {T_MIN}, no final "
        "denoising step; energy distance (V-statistic, all pairs) on the x components against "
        f"{args.n} fresh data points (seed 1). One ScoreMLP 128-128-128 (time features sin/cos(ω_k t), "
        f"ω_k = {omega}, …) per "
        f"model, {args.train_steps} DSM steps, batch 256, lr 2e-3, EMA 0.999 (the EMA net samples). "
        f"CLD (examples/cld2d.sde) is trained on (x, v0), v0 ~ N(0, {GAMMA} M I). "
        "steps = round(target NFE / stages), halves up (stages: dpm-solver = order, heun = 2, else 1). "
        f"Default time grids (grid=None), diagonal kernels (VP): {grids}; coupled kernels (CLD): {coupled}. "
        "Ancestral and Euler–Maruyama are stochastic (noise seed 0); the others deterministic. On a diagonal "
        "kernel order 1 of dpm-solver, dpm-solver++ and deis is the DDIM update, each on its own grid.",
        "",
    ]
    aliased = [r for r in results if r["aliasing"] < 1e-5]
    if aliased:
        which = ", ".join(f"{r['dataset']}/{r['sde']}" for r in aliased)
        lines += [f"**Caveat:** the untrained score network gives t1 the output of t0 (relative difference "
                  f"{max(r['aliasing'] for r in aliased):.0e}; {which}): "
                  "its time features cannot tell the prior's time from the data's, so the trained net's score "
                  "at t1, every sampler's first evaluation, is unreliable.", ""]
    for res in results:
        lines += table(res, args.nfe)
    if args.plot:
        plot(results, args.nfe, args.plot)
        lines.append(f"Plot: {os.path.relpath(args.plot, os.path.dirname(os.path.abspath(args.out or args.plot)))}")
    publish(lines, args.out)
    log(f"total {total:.1f} s")


if __name__ == "__main__":
    main()
