"""GPU check: simulate, every score sampler and log_prob on a device against float64 CPU runs.

    python benchmarks/gpu_check.py [--backend torch|jax|both] [--device cuda|gpu|cpu] [--quick]
                                   [--out benchmarks/results/gpu_check.md]

For each backend it builds the VP model of examples/vp.sde (d = 2) with the default ScoreModel
network (ScoreMLP, kernel-preconditioned), trains it briefly on toy data (eight Gaussians, fixed
seed; torch trains on the CPU, JAX on its device), and then runs the *same weights* twice: in
float32 on the device and in float64 on the CPU (the reference). Each phase is compared:

- score   the network itself on fixed (x, t): pathwise, |Δ| ≤ 1e-4 (1 + |ref|) (float32 rounding
          through a 3-layer MLP and the 1/σ_t preconditioner is ~1e-6 relative; TF32 matmuls would be
          ~1e-3 and fail, which is the point: torch's allow_tf32 is reported, JAX's float32 matmul
          precision is pinned to "highest" unless --jax-matmul-precision says otherwise).
- simulate, em, pc   stochastic: the initial states are shared (x0 / x_init), but the noise stream
          cannot be the same — torch draws it from a device generator (CPU mt19937 ≠ CUDA Philox) and
          float32 and float64 normals differ even on one device, in both backends. So the results are
          compared as distributions: per-component means and every covariance entry, as paired
          differences over the particles (shared initial states), must agree within 5 Monte-Carlo
          standard errors (|Δ| ≤ 5 SE; about 30 such tests in a run, each false alarm ≈ 6e-7).
          JAX's threefry stream is the same on every device, so for JAX the device float32 run is
          also compared pathwise with a CPU float32 run of the same weights, seed and x_init:
          the 99th percentile of |Δ| / (1e-3 (1 + |ref|)) ≤ 1 (trivially 0 when the device is cpu).
- ode, log_prob   deterministic given x_init / x: pathwise, |Δ| ≤ 1e-3 (1 + |ref|). Both runs use
          an adaptive solver at rtol = atol = 1e-5; the float32 run takes its own steps, so the two
          agree to the solver's accumulated tolerance (≲ 1e-3 over ~100 steps), not to rounding.
- ddim, dpm-solver, dpm-solver++, deis, heun   the few-step samplers, 10 steps from a shared
          x_init: deterministic, so pathwise like ode (the same steps on both: float32 rounding only).
- ancestral   order 2 (SDE-DPM-Solver++(2M)), 10 steps: stochastic, by statistics like em.

Then, on the device only, it measures the copy bandwidth (a large tensor copy: bytes read +
written per second) and the throughput of simulate (the generated fused EM step, no network) and
of the EM sampler (one MLP evaluation per step), in particles·steps/s, against a roofline:
bytes per particle-step of the EM update = 4 d · itemsize (write the noise, read it, read the
state, write the state), roofline = bandwidth / bytes per particle-step.

Exit status 0 when every comparison holds (also when no GPU is present: it then prints
"no GPU found: ran on cpu" and compares CPU float32 with CPU float64), 1 when any fails.
Sizes are capped so that a GPU machine finishes in well under 5 minutes; each phase is timed.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SPEC = os.path.join(ROOT, "examples", "vp.sde")
DEFAULT_OUT = os.path.join(HERE, "results", "gpu_check.md")
D = 2
DATA = "eight_gaussians"
#: The few-step samplers (issue 13): deterministic ones compared pathwise, ancestral by statistics.
FEW_STEP = (("ddim", 1), ("dpm-solver", 3), ("dpm-solver++", 2), ("deis", 3), ("heun", 2))
FEW_STEPS = 10
PHASES = ("score", "simulate", "em", "pc", "ode", *(m for m, _ in FEW_STEP), "ancestral", "log_prob")
TS = [0.0, 0.25, 1.0]  # simulate's output times (step counts divisible by 4 land on them exactly)
TIME_BUDGET_S = 270.0  # throughput measurements are skipped past this (the comparisons always run)

STAT_Z = 5.0                      # statistics: |Δ| ≤ 5 Monte-Carlo standard errors
SCORE_TOL = dict(rtol=1e-4, atol=1e-4)
FLOW_TOL = dict(rtol=1e-3, atol=1e-3)  # ode samples and log_prob (adaptive solvers at 1e-5)
SAME_NOISE_TOL = dict(rtol=1e-3, atol=1e-3, quantile=0.99)
SOLVER_TOL = dict(rtol=1e-5, atol=1e-5)


@dataclass(frozen=True)
class Sizes:
    hidden: int
    depth: int
    train_steps: int
    n_stat: int        # particles for simulate / em / pc comparisons
    steps: int         # EM steps for simulate / em / pc comparisons
    n_ode: int
    n_logp: int
    n_score: int
    bw_mib: int        # copy-bandwidth tensor size
    n_tp_sim: int      # throughput: simulate particles
    steps_tp_sim: int
    n_tp_em: int       # throughput: EM sampler particles
    steps_tp_em: int


FULL = Sizes(hidden=128, depth=3, train_steps=400, n_stat=10_000, steps=100, n_ode=4096, n_logp=1024,
             n_score=8192, bw_mib=1024, n_tp_sim=1 << 22, steps_tp_sim=200, n_tp_em=1 << 18, steps_tp_em=100)
# --quick: the throughput runs reuse the comparison shapes, so JAX's compilation cache serves them
QUICK = Sizes(hidden=32, depth=2, train_steps=50, n_stat=1000, steps=32, n_ode=128, n_logp=64,
              n_score=256, bw_mib=32, n_tp_sim=1000, steps_tp_sim=32, n_tp_em=1000, steps_tp_em=32)


# ------------------------------------------------------------------------------------ comparisons
@dataclass
class Comparison:
    kind: str          # "pathwise" | "statistics"
    passed: bool
    metric: str
    tolerance: str


def _finite(*arrays) -> bool:
    return all(np.all(np.isfinite(a)) for a in arrays)


def compare_paths(dev, ref, *, rtol: float, atol: float, quantile: float = 1.0) -> Comparison:
    """Elementwise err = |dev - ref| / (atol + rtol |ref|); passes when its ``quantile`` (1.0: the
    maximum) is ≤ 1 and both are finite with the same shape."""
    dev = np.asarray(dev, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    tol = f"|Δ| ≤ {atol:g} + {rtol:g}·|ref|" + ("" if quantile >= 1 else f" at the {100 * quantile:g}th percentile")
    if dev.shape != ref.shape:
        return Comparison("pathwise", False, f"shape {dev.shape} ≠ {ref.shape}", tol)
    if not _finite(dev, ref):
        return Comparison("pathwise", False, "non-finite values", tol)
    diff = np.abs(dev - ref)
    err = diff / (atol + rtol * np.abs(ref))
    q = float(np.quantile(err, quantile)) if quantile < 1 else float(err.max(initial=0.0))
    metric = f"max |Δ| {diff.max(initial=0.0):.2e}, err {q:.3g}" + ("" if quantile >= 1 else f" (max {err.max():.3g})")
    return Comparison("pathwise", q <= 1.0, metric, tol)


def _ratio(delta: np.ndarray, se: np.ndarray) -> np.ndarray:
    delta, se = np.abs(delta), np.asarray(se)
    out = np.zeros_like(delta)
    nz = se > 0
    out[nz] = delta[nz] / se[nz]
    out[~nz & (delta > 0)] = np.inf
    return out


def compare_statistics(dev, ref, *, z: float = STAT_Z, paired: bool = True) -> Comparison:
    """Means and covariance entries of two samples (n, k) agree within ``z`` Monte-Carlo standard
    errors. ``paired``: row i of both came from the same initial state, so the standard errors are
    those of the per-particle differences (valid for any dependence between the two runs)."""
    a = np.asarray(dev, dtype=np.float64)
    b = np.asarray(ref, dtype=np.float64)
    a = a.reshape(a.shape[0], -1)
    b = b.reshape(b.shape[0], -1)
    tol = f"|Δ| ≤ {z:g} SE (means, covariances)"
    if a.shape[1] != b.shape[1] or (paired and a.shape != b.shape):
        return Comparison("statistics", False, f"shape {a.shape} ≠ {b.shape}", tol)
    if not _finite(a, b):
        return Comparison("statistics", False, "non-finite values", tol)
    na, nb = a.shape[0], b.shape[0]
    ca, cb = a - a.mean(0), b - b.mean(0)
    iu, ju = np.triu_indices(a.shape[1])
    pa, pb = ca[:, iu] * ca[:, ju], cb[:, iu] * cb[:, ju]   # per-particle covariance terms
    if paired:
        dm, dc = a - b, pa - pb
        r_mean = _ratio(dm.mean(0), dm.std(0, ddof=1) / math.sqrt(na))
        r_cov = _ratio(dc.mean(0), dc.std(0, ddof=1) / math.sqrt(na))
    else:
        r_mean = _ratio(a.mean(0) - b.mean(0), np.sqrt(a.var(0, ddof=1) / na + b.var(0, ddof=1) / nb))
        r_cov = _ratio(pa.mean(0) - pb.mean(0), np.sqrt(pa.var(0, ddof=1) / na + pb.var(0, ddof=1) / nb))
    worst = float(max(r_mean.max(), r_cov.max()))
    metric = (f"max |Δ|/SE {worst:.2f} (means {r_mean.max():.2f}, cov {r_cov.max():.2f}; "
              f"n {na}{' paired' if paired else ''})")
    return Comparison("statistics", worst <= z, metric, tol)


# ------------------------------------------------------------------------------------ report
@dataclass
class Row:
    backend: str
    phase: str
    against: str
    size: str
    comparison: Optional[Comparison]
    dev_s: float = float("nan")
    ref_s: float = float("nan")
    note: str = ""
    error: str = ""

    @property
    def passed(self) -> bool:
        return not self.error and self.comparison is not None and self.comparison.passed


@dataclass
class Throughput:
    backend: str
    kernel: str
    particles: int
    steps: int
    seconds: float
    bandwidth: float       # bytes/s
    bytes_per_step: int

    @property
    def rate(self) -> float:
        return self.particles * self.steps / self.seconds

    @property
    def roofline(self) -> float:
        return self.bandwidth / self.bytes_per_step


@dataclass
class Report:
    quick: bool
    header: List[str] = field(default_factory=list)
    rows: List[Row] = field(default_factory=list)
    throughput: List[Throughput] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    on_gpu: List[str] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        status = "ok  " if row.passed else "FAIL"
        what = row.error or (f"{row.comparison.metric}  [{row.comparison.tolerance}]" if row.comparison else "")
        print(f"  {status} {row.backend:<5} {row.phase:<9} {row.against:<44} {what}  "
              f"({row.dev_s:.2f} s device, {row.ref_s:.2f} s reference){'  ' + row.note if row.note else ''}",
              flush=True)

    def failures(self) -> List[Row]:
        return [r for r in self.rows if not r.passed]

    def markdown(self, elapsed: float) -> str:
        title = "# GPU check: device float32 against CPU float64"
        kind = (f"GPU run ({', '.join(self.on_gpu)} on the GPU; see the device lines)" if self.on_gpu else
                "**CPU smoke run — no GPU was used; this table is not a GPU result** (GPU untested until "
                "this table is filled on a GPU machine)")
        lines = [title, "", f"Run: {kind}{' (--quick sizes)' if self.quick else ''}; "
                 f"total {elapsed:.1f} s; `python benchmarks/gpu_check.py {' '.join(sys.argv[1:])}`.", ""]
        lines += [f"- {h}" for h in self.header] + [""]
        lines += ["| backend | phase | compared with | size | comparison | result | tolerance | pass | "
                  "device s | reference s | note |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            c = r.comparison
            lines.append(table_line(r.backend, r.phase, r.against, r.size, c.kind if c else "—",
                                    r.error or c.metric, c.tolerance if c else "—", "yes" if r.passed else "**NO**",
                                    f"{r.dev_s:.2f}", f"{r.ref_s:.2f}", r.note))
        lines += ["", "Throughput on the device (after a warm-up; roofline = copy bandwidth / bytes per "
                  "particle-step, bytes = 4·d·itemsize: write the noise, read it, read and write the state):", "",
                  "| backend | kernel | particles | steps | s | particles·steps/s | copy bandwidth GB/s | "
                  "bytes/particle-step | roofline particles·steps/s | fraction of roofline |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for t in self.throughput:
            lines.append(table_line(t.backend, t.kernel, f"{t.particles:,}", t.steps, f"{t.seconds:.3f}",
                                    f"{t.rate:.3e}", f"{t.bandwidth / 1e9:.1f}", t.bytes_per_step,
                                    f"{t.roofline:.3e}", f"{t.rate / t.roofline:.3f}"))
        lines += ["", "The simulate rows are the memory-bound case the roofline describes; the EM sampler also "
                  "evaluates the MLP once per step (its FLOPs and kernel launches dominate), so its fraction of the "
                  "bandwidth roofline is not expected to approach 1."]
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        failed = self.failures()
        lines += ["", f"**{len(self.rows) - len(failed)} of {len(self.rows)} comparisons hold.**"
                  + ("" if not failed else " Failed: " + ", ".join(f"{r.backend} {r.phase} ({r.against})"
                                                                 for r in failed))]
        return "\n".join(lines) + "\n"


def table_line(*cells) -> str:
    """A markdown table row; '|' inside a cell (as in |Δ|) is escaped."""
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def run_row(report: Report, backend: str, phase: str, against: str, size: str,
            body: Callable[[], tuple]) -> None:
    """body() -> (Comparison, device seconds, reference seconds, note); an exception fails the row."""
    try:
        comparison, dev_s, ref_s, note = body()
        report.add(Row(backend, phase, against, size, comparison, dev_s, ref_s, note))
    except Exception as error:  # a GPU check reports what broke and goes on
        message = f"ERROR {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:200]
        report.add(Row(backend, phase, against, size, None, error=message))


def toy(n: int, seed: int) -> np.ndarray:
    from sdelang.toy_data import sample_toy

    return np.asarray(sample_toy(DATA, n, seed=seed), dtype=np.float64)


def normal(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, D))


def t_grid(n: int, t_min: float = 1e-3) -> np.ndarray:
    return np.linspace(t_min, 1.0, n)


def weights_line(sizes: Sizes) -> str:
    return (f"trained {sizes.train_steps} steps" if sizes.train_steps else "fixed random weights (seed 0, untrained)")


def dtype_note(dtype, expected: str = "float32") -> str:
    """'out float32', or a flagged dtype leak (not a failure: the values are still compared)."""
    name = str(dtype).replace("torch.", "")
    return f"out {name}" + ("" if name == expected else f" (a {expected} model returned {name})")


def machine_lines() -> List[str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    return [f"Machine: {socket.gethostname()}, {platform.platform()}, {cpu}, {os.cpu_count()} CPUs; "
            f"Python {platform.python_version()}, numpy {np.__version__}",
            f"Model: {os.path.relpath(SPEC, ROOT)} (VP, d = {D}), default ScoreModel network "
            f"(ScoreMLP + kernel preconditioning); the same weights run in float32 on the device and in "
            f"float64 on the CPU"]


# ------------------------------------------------------------------------------------ torch
def torch_device(requested: Optional[str]):
    """(torch.device, note) — cuda when available unless told otherwise; cpu with a note if no GPU."""
    import torch

    if requested is None or requested in ("cuda", "gpu") or requested.startswith(("cuda:", "gpu:")):
        name = "cuda" if requested is None or requested == "gpu" else requested.replace("gpu", "cuda")
        if torch.cuda.is_available():
            return torch.device(name), ""
        return torch.device("cpu"), "no GPU found: ran on cpu"
    device = torch.device(requested)
    note = "" if device.type != "cpu" or torch.cuda.is_available() else "no GPU found: ran on cpu"
    return device, note or ("ran on cpu (as asked)" if device.type == "cpu" else "")


def torch_copy_bandwidth(device, nbytes: int, timed, reps: int = 10) -> float:
    """Bytes read + written per second by ``dst.copy_(src)`` of an ``nbytes`` float32 tensor."""
    import torch

    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)  # warm-up
    _, seconds = timed(lambda: [dst.copy_(src) for _ in range(reps)])
    return 2 * nbytes * reps / seconds


def torch_check(report: Report, sizes: Sizes, requested: Optional[str], start: float) -> None:
    import torch

    import sdelang
    from sdelang_torch import ScoreModel

    device, note = torch_device(requested)
    print(f"torch {torch.__version__}: device {device}{' — ' + note if note else ''}", flush=True)
    cuda = device.type == "cuda"
    if cuda:
        report.on_gpu.append("torch")
        report.header.append(f"torch {torch.__version__} (CUDA {torch.version.cuda}), device {device}: "
                             f"{torch.cuda.get_device_name(device)}; allow_tf32 (matmul) = "
                             f"{torch.backends.cuda.matmul.allow_tf32}; CPU reference threads {torch.get_num_threads()}")
    else:
        report.header.append(f"torch {torch.__version__}, device cpu ({note}); threads {torch.get_num_threads()}")
    if note.startswith("no GPU"):
        report.notes.append(f"torch: {note}")

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    def timed(fn):
        sync()
        t0 = time.perf_counter()
        out = fn()
        sync()
        return out, time.perf_counter() - t0

    f32, f64, cpu = torch.float32, torch.float64, torch.device("cpu")
    t0 = time.perf_counter()
    trained = ScoreModel(SPEC, hidden=sizes.hidden, depth=sizes.depth, seed=0, d=D)
    if sizes.train_steps:
        trained.fit(toy(4096, seed=0), steps=sizes.train_steps, batch_size=256, seed=0, progress=False)
    weights = trained.ema_net
    print(f"  {weights_line(sizes)} on cpu in {time.perf_counter() - t0:.1f} s", flush=True)
    dev_model = ScoreModel(SPEC, net=copy.deepcopy(weights).to(device=device, dtype=f32), precondition=False,
                           dtype=f32, d=D)
    ref_model = ScoreModel(SPEC, net=copy.deepcopy(weights).to(device=cpu, dtype=f64), precondition=False,
                           dtype=f64, d=D)

    def on(x, dtype, where):
        return torch.as_tensor(np.asarray(x), dtype=dtype).to(where)

    def host(x):
        return x.detach().to("cpu", torch.float64).numpy()

    def sample(model, n, method, steps, x_init, where, seed=2):
        options = dict(seed=seed, x_init=x_init)
        if method != "ode":
            options["steps"] = steps
        else:
            options.update(SOLVER_TOL)
        try:
            return model.sample(n, method, device=where, **options)
        except TypeError as error:  # a sampler that takes its device from x_init
            if "device" not in str(error):
                raise
            return model.sample(n, method, **options)

    # score network on fixed inputs
    def score_phase():
        x = 2 * normal(sizes.n_score, seed=10)
        t = np.resize(t_grid(64), sizes.n_score)
        with torch.no_grad():
            out_dev, dev_s = timed(lambda: dev_model.score_net()(on(x, f32, device), on(t, f32, device)))
            out_ref, ref_s = timed(lambda: ref_model.score_net()(on(x, f64, cpu), on(t, f64, cpu)))
        return compare_paths(host(out_dev), host(out_ref), **SCORE_TOL), dev_s, ref_s, f"{dtype_note(out_dev.dtype)}"

    run_row(report, "torch", "score", "CPU float64, same inputs", f"{sizes.n_score} (x, t)", score_phase)

    # simulate: the forward VP from shared x0 (noise differs: device generator, dtype)
    module_dev = sdelang.load(SPEC, d=D).compile("torch").to(device)
    module_ref = sdelang.load(SPEC, d=D).compile("torch")
    ts, dt = TS, 1.0 / sizes.steps

    def simulate_phase():
        x0 = toy(sizes.n_stat, seed=11)
        out_dev, dev_s = timed(lambda: module_dev.simulate(on(x0, f32, device), ts, dt, seed=1))
        out_ref, ref_s = timed(lambda: module_ref.simulate(on(x0, f64, cpu), ts, dt, seed=1))
        a = host(out_dev)[1:].transpose(1, 0, 2)
        b = host(out_ref)[1:].transpose(1, 0, 2)
        return compare_statistics(a, b), dev_s, ref_s, f"states at t = 0.25, 1; {dtype_note(out_dev.dtype)}"

    run_row(report, "torch", "simulate", "CPU float64, shared x0 (noise differs)",
            f"{sizes.n_stat} × {sizes.steps} steps", simulate_phase)

    x_init = normal(sizes.n_stat, seed=12)
    for method in ("em", "pc"):
        def sde_phase(method=method):
            r_dev, dev_s = timed(lambda: sample(dev_model, sizes.n_stat, method, sizes.steps,
                                                on(x_init, f32, device), device))
            r_ref, ref_s = timed(lambda: sample(ref_model, sizes.n_stat, method, sizes.steps,
                                                on(x_init, f64, cpu), cpu))
            note = f"NFE {r_dev.nfe} / {r_ref.nfe}; {dtype_note(r_dev.samples.dtype)} on {r_dev.samples.device}"
            comparison = compare_statistics(host(r_dev.samples), host(r_ref.samples))
            if r_dev.nfe != r_ref.nfe:
                comparison = Comparison(comparison.kind, False, comparison.metric + f"; NFE {r_dev.nfe} ≠ {r_ref.nfe}",
                                        comparison.tolerance)
            return comparison, dev_s, ref_s, note

        run_row(report, "torch", method, "CPU float64, shared x_init (noise differs)",
                f"{sizes.n_stat} × {sizes.steps} steps", sde_phase)

    def ode_phase():
        x = normal(sizes.n_ode, seed=13)
        r_dev, dev_s = timed(lambda: sample(dev_model, sizes.n_ode, "ode", None, on(x, f32, device), device))
        r_ref, ref_s = timed(lambda: sample(ref_model, sizes.n_ode, "ode", None, on(x, f64, cpu), cpu))
        return (compare_paths(host(r_dev.samples), host(r_ref.samples), **FLOW_TOL), dev_s, ref_s,
                f"NFE {r_dev.nfe} / {r_ref.nfe}; {dtype_note(r_dev.samples.dtype)}")

    run_row(report, "torch", "ode", "CPU float64, same x_init", f"{sizes.n_ode}, dopri5 1e-5", ode_phase)

    def few_step_phase(method, order):
        x = on(normal(sizes.n_ode, seed=15), f32, device), on(normal(sizes.n_ode, seed=15), f64, cpu)
        r_dev, dev_s = timed(lambda: dev_model.sample(sizes.n_ode, method, steps=FEW_STEPS, order=order, x_init=x[0]))
        r_ref, ref_s = timed(lambda: ref_model.sample(sizes.n_ode, method, steps=FEW_STEPS, order=order, x_init=x[1]))
        compare = compare_statistics if method == "ancestral" else (
            lambda a, b: compare_paths(a, b, **FLOW_TOL))
        return (compare(host(r_dev.samples), host(r_ref.samples)), dev_s, ref_s,
                f"NFE {r_dev.nfe} / {r_ref.nfe}; {dtype_note(r_dev.samples.dtype)} on {r_dev.samples.device}")

    for method, order in FEW_STEP + (("ancestral", 2),):
        against = "CPU float64, same x_init" + (" (noise differs)" if method == "ancestral" else "")
        run_row(report, "torch", method, against, f"{sizes.n_ode}, {FEW_STEPS} steps, order {order}",
                lambda method=method, order=order: few_step_phase(method, order))

    def logp_phase():
        x = toy(sizes.n_logp, seed=14)
        lp_dev, dev_s = timed(lambda: dev_model.log_prob(on(x, f32, device), **SOLVER_TOL))
        lp_ref, ref_s = timed(lambda: ref_model.log_prob(on(x, f64, cpu), **SOLVER_TOL))
        return (compare_paths(host(lp_dev), host(lp_ref), **FLOW_TOL), dev_s, ref_s,
                f"{dtype_note(lp_dev.dtype)} on {lp_dev.device}")

    run_row(report, "torch", "log_prob", "CPU float64, same x", f"{sizes.n_logp}, exact trace", logp_phase)

    # throughput on the device
    if time.perf_counter() - start > TIME_BUDGET_S:
        report.notes.append("torch: throughput skipped (time budget spent)")
        return
    try:
        bandwidth = torch_copy_bandwidth(device, sizes.bw_mib << 20, timed)
        bytes_per_step = 4 * D * 4
        x0 = torch.randn(sizes.n_tp_sim, D, device=device, dtype=f32)
        module_dev.simulate(x0, TS, 1.0 / 4, seed=0)  # warm-up
        _, seconds = timed(lambda: module_dev.simulate(x0, TS, 1.0 / sizes.steps_tp_sim, seed=0))
        report.throughput.append(Throughput("torch", "simulate (fused EM step, VP)", sizes.n_tp_sim,
                                            sizes.steps_tp_sim, seconds, bandwidth, bytes_per_step))
        xi = torch.randn(sizes.n_tp_em, D, device=device, dtype=f32)
        sample(dev_model, sizes.n_tp_em, "em", 2, xi, device)  # warm-up
        _, seconds = timed(lambda: sample(dev_model, sizes.n_tp_em, "em", sizes.steps_tp_em, xi, device))
        report.throughput.append(Throughput("torch", f"EM sampler (MLP {D}-{sizes.hidden}×{sizes.depth}-{D} per step)",
                                            sizes.n_tp_em, sizes.steps_tp_em, seconds, bandwidth, bytes_per_step))
        for t in report.throughput[-2:]:
            print(f"  torch {t.kernel}: {t.rate:.3e} particles·steps/s, roofline {t.roofline:.3e} "
                  f"({t.rate / t.roofline:.3f}); copy bandwidth {t.bandwidth / 1e9:.1f} GB/s", flush=True)
    except Exception as error:
        report.notes.append(f"torch: throughput failed: {type(error).__name__}: {error}"[:300])
    finally:
        if cuda:
            torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------ JAX
def jax_device(requested: Optional[str]):
    """(jax device, note): the default backend's first device unless told otherwise."""
    import jax

    def gpus():
        try:
            return jax.devices("gpu")
        except Exception:  # RuntimeError: no GPU backend (jaxlib without CUDA, or no device)
            return []

    if requested is None:
        device = jax.devices()[0]
        if device.platform == "cpu":
            return device, "no GPU found: ran on cpu" if not gpus() else "ran on cpu (JAX's default backend)"
        return device, ""
    if requested == "cpu":
        return jax.devices("cpu")[0], "ran on cpu (as asked)" if gpus() else "no GPU found: ran on cpu"
    if requested in ("cuda", "gpu") or requested.startswith(("cuda:", "gpu:")):
        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        found = gpus()
        if found:
            return found[index], ""
        return jax.devices("cpu")[0], "no GPU found: ran on cpu"
    return jax.devices(requested)[0], ""


def jax_check(report: Report, sizes: Sizes, requested: Optional[str], start: float, precision: str) -> None:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import sdelang
    from sdelang_jax import ScoreModel

    device, note = jax_device(requested)
    cpu = jax.devices("cpu")[0]
    on_gpu = device.platform != "cpu"
    import jaxlib

    print(f"jax {jax.__version__}: device {device}{' — ' + note if note else ''}", flush=True)
    if on_gpu:
        report.on_gpu.append("jax")
    report.header.append(f"jax {jax.__version__} (jaxlib {jaxlib.__version__}), device {device.platform}: "
                         f"{getattr(device, 'device_kind', device)}{' (' + note + ')' if note else ''}; "
                         f"jax_default_matmul_precision = {precision}")
    if note.startswith("no GPU"):
        report.notes.append(f"jax: {note}")

    def timed(fn):
        t0 = time.perf_counter()
        out = fn()
        jax.block_until_ready(getattr(out, "samples", out))  # a SampleResult is no pytree: block on its array
        return out, time.perf_counter() - t0

    def cast(tree, dtype, where):
        return jax.tree_util.tree_map(
            lambda a: jax.device_put(a.astype(dtype), where) if eqx.is_inexact_array(a) else a, tree)

    def on(x, dtype, where):
        return jax.device_put(jnp.asarray(np.asarray(x), dtype=dtype), where)

    def host(x):
        return np.asarray(jax.device_get(x), dtype=np.float64)

    def placement(x):
        return ",".join(sorted({d.platform for d in x.devices()})) if hasattr(x, "devices") else "?"

    f32, f64 = jnp.float32, jnp.float64
    t0 = time.perf_counter()
    with jax.default_device(device):
        trained = ScoreModel(SPEC, hidden=sizes.hidden, depth=sizes.depth, seed=0, d=D, dtype=f32)
        if sizes.train_steps:
            trained.fit(toy(4096, seed=0), steps=sizes.train_steps, batch_size=256, seed=0, progress=False)
        weights = trained.ema_net
    print(f"  {weights_line(sizes)} on {device.platform} in {time.perf_counter() - t0:.1f} s "
          f"(incl. compilation)", flush=True)
    models = {
        "dev": (ScoreModel(SPEC, net=cast(weights, f32, device), precondition=False, dtype=f32, d=D), f32, device),
        "ref": (ScoreModel(SPEC, net=cast(weights, f64, cpu), precondition=False, dtype=f64, d=D), f64, cpu),
        "cpu32": (ScoreModel(SPEC, net=cast(weights, f32, cpu), precondition=False, dtype=f32, d=D), f32, cpu),
    }

    def run(which, fn):
        """fn(model, dtype, device) under that device's default placement, timed."""
        model, dtype, where = models[which]
        with jax.default_device(where):
            return timed(lambda: fn(model, dtype, where))

    def score_phase():
        x = 2 * normal(sizes.n_score, seed=10)
        t = np.resize(t_grid(64), sizes.n_score)
        call = eqx.filter_jit(lambda net, x, t: net(x, t))
        out_dev, dev_s = run("dev", lambda m, dt, w: call(m.score_net(), on(x, dt, w), on(t, dt, w)))
        out_ref, ref_s = run("ref", lambda m, dt, w: call(m.score_net(), on(x, dt, w), on(t, dt, w)))
        return compare_paths(host(out_dev), host(out_ref), **SCORE_TOL), dev_s, ref_s, f"{dtype_note(out_dev.dtype)}"

    run_row(report, "jax", "score", "CPU float64, same inputs", f"{sizes.n_score} (x, t)", score_phase)

    module = sdelang.load(SPEC, d=D).compile("jax")
    ts, dt = TS, 1.0 / sizes.steps
    x0 = toy(sizes.n_stat, seed=11)
    x_init = normal(sizes.n_stat, seed=12)
    results = {}

    def simulate(which):
        out, seconds = run(which, lambda m, dtype, w: module.simulate(on(x0, dtype, w), ts, dt, seed=1))
        return host(out)[1:].transpose(1, 0, 2), seconds, out.dtype

    def sde(which, method):
        r, seconds = run(which, lambda m, dtype, w: m.sample(sizes.n_stat, method, steps=sizes.steps, seed=2,
                                                                x_init=on(x_init, dtype, w)))
        return r, seconds

    def simulate_phase():
        a, dev_s, dtype = simulate("dev")
        b, ref_s, _ = simulate("ref")
        results["simulate"] = (a, dev_s)
        return compare_statistics(a, b), dev_s, ref_s, f"states at t = 0.25, 1; {dtype_note(dtype)}"

    def simulate_same_noise():
        a, dev_s = results["simulate"]
        b, ref_s, _ = simulate("cpu32")
        return compare_paths(a, b, **SAME_NOISE_TOL), dev_s, ref_s, "" if on_gpu else "same device: trivial"

    size = f"{sizes.n_stat} × {sizes.steps} steps"
    run_row(report, "jax", "simulate", "CPU float64, shared x0 (noise differs)", size, simulate_phase)
    if "simulate" in results:
        run_row(report, "jax", "simulate", "CPU float32, same threefry noise", size, simulate_same_noise)
    for method in ("em", "pc"):
        def sde_phase(method=method):
            r_dev, dev_s = sde("dev", method)
            r_ref, ref_s = sde("ref", method)
            results[method] = (r_dev, dev_s)
            comparison = compare_statistics(host(r_dev.samples), host(r_ref.samples))
            if r_dev.nfe != r_ref.nfe:
                comparison = Comparison(comparison.kind, False, comparison.metric + f"; NFE {r_dev.nfe} ≠ {r_ref.nfe}",
                                        comparison.tolerance)
            return (comparison, dev_s, ref_s,
                    f"NFE {r_dev.nfe} / {r_ref.nfe}; {dtype_note(r_dev.samples.dtype)} on {placement(r_dev.samples)}")

        def sde_same_noise(method=method):
            r_dev, dev_s = results[method]
            r_cpu, cpu_s = sde("cpu32", method)
            return (compare_paths(host(r_dev.samples), host(r_cpu.samples), **SAME_NOISE_TOL), dev_s, cpu_s,
                    "" if on_gpu else "same device: trivial")

        run_row(report, "jax", method, "CPU float64, shared x_init (noise differs)", size, sde_phase)
        if method in results:
            run_row(report, "jax", method, "CPU float32, same threefry noise", size, sde_same_noise)

    def ode_phase():
        x = normal(sizes.n_ode, seed=13)
        r_dev, dev_s = run("dev", lambda m, dtype, w: m.sample(sizes.n_ode, "ode", seed=2, x_init=on(x, dtype, w),
                                                               **SOLVER_TOL))
        r_ref, ref_s = run("ref", lambda m, dtype, w: m.sample(sizes.n_ode, "ode", seed=2, x_init=on(x, dtype, w),
                                                               **SOLVER_TOL))
        return (compare_paths(host(r_dev.samples), host(r_ref.samples), **FLOW_TOL), dev_s, ref_s,
                f"NFE {r_dev.nfe} / {r_ref.nfe}; {dtype_note(r_dev.samples.dtype)} on {placement(r_dev.samples)}")

    run_row(report, "jax", "ode", "CPU float64, same x_init", f"{sizes.n_ode}, Tsit5 1e-5", ode_phase)

    def few_step_phase(method, order):
        x = normal(sizes.n_ode, seed=15)
        call = lambda m, dtype, w: m.sample(sizes.n_ode, method, steps=FEW_STEPS, order=order,  # noqa: E731
                                             x_init=on(x, dtype, w))
        r_dev, dev_s = run("dev", call)
        r_ref, ref_s = run("ref", call)
        compare = compare_statistics if method == "ancestral" else (
            lambda a, b: compare_paths(a, b, **FLOW_TOL))
        return (compare(host(r_dev.samples), host(r_ref.samples)), dev_s, ref_s,
                f"NFE {r_dev.nfe} / {r_ref.nfe}; {dtype_note(r_dev.samples.dtype)} on {placement(r_dev.samples)}")

    for method, order in FEW_STEP + (("ancestral", 2),):
        against = "CPU float64, same x_init" + (" (noise differs)" if method == "ancestral" else "")
        run_row(report, "jax", method, against, f"{sizes.n_ode}, {FEW_STEPS} steps, order {order}",
                lambda method=method, order=order: few_step_phase(method, order))

    def logp_phase():
        x = toy(sizes.n_logp, seed=14)
        lp_dev, dev_s = run("dev", lambda m, dtype, w: m.log_prob(on(x, dtype, w), **SOLVER_TOL))
        lp_ref, ref_s = run("ref", lambda m, dtype, w: m.log_prob(on(x, dtype, w), **SOLVER_TOL))
        return (compare_paths(host(lp_dev), host(lp_ref), **FLOW_TOL), dev_s, ref_s,
                f"{dtype_note(lp_dev.dtype)} on {placement(lp_dev)}")

    run_row(report, "jax", "log_prob", "CPU float64, same x", f"{sizes.n_logp}, exact trace", logp_phase)

    if time.perf_counter() - start > TIME_BUDGET_S:
        report.notes.append("jax: throughput skipped (time budget spent)")
        return
    try:
        with jax.default_device(device):
            nbytes = sizes.bw_mib << 20
            src = jax.device_put(jnp.ones(nbytes // 4, f32), device)
            bump = jax.jit(lambda a: a + 1.0)  # one read and one write of every element, like a copy
            jax.block_until_ready(bump(src))
            reps = 10
            t0 = time.perf_counter()
            for _ in range(reps):
                out = bump(src)
            jax.block_until_ready(out)
            bandwidth = 2 * nbytes * reps / (time.perf_counter() - t0)
            del src, out
            bytes_per_step = 4 * D * 4
            x0 = jax.device_put(jax.random.normal(jax.random.PRNGKey(0), (sizes.n_tp_sim, D), f32), device)
            timed(lambda: module.simulate(x0, TS, 1.0 / sizes.steps_tp_sim, seed=0))  # compiles
            _, seconds = timed(lambda: module.simulate(x0, TS, 1.0 / sizes.steps_tp_sim, seed=1))
            report.throughput.append(Throughput("jax", "simulate (lax.scan EM step, VP)", sizes.n_tp_sim,
                                                sizes.steps_tp_sim, seconds, bandwidth, bytes_per_step))
            model = models["dev"][0]
            xi = jax.device_put(jax.random.normal(jax.random.PRNGKey(1), (sizes.n_tp_em, D), f32), device)
            timed(lambda: model.sample(sizes.n_tp_em, "em", steps=sizes.steps_tp_em, seed=0, x_init=xi).samples)
            _, seconds = timed(lambda: model.sample(sizes.n_tp_em, "em", steps=sizes.steps_tp_em, seed=1,
                                                    x_init=xi).samples)
            report.throughput.append(Throughput("jax", f"EM sampler (MLP {D}-{sizes.hidden}×{sizes.depth}-{D} per step)",
                                                sizes.n_tp_em, sizes.steps_tp_em, seconds, bandwidth, bytes_per_step))
        report.notes.append("jax: copy bandwidth measured as a jitted `x + 1` over the tensor (one read and one "
                            "write per element, as a copy); simulate/EM timings exclude compilation (second call)")
        for t in report.throughput[-2:]:
            print(f"  jax {t.kernel}: {t.rate:.3e} particles·steps/s, roofline {t.roofline:.3e} "
                  f"({t.rate / t.roofline:.3f}); copy bandwidth {t.bandwidth / 1e9:.1f} GB/s", flush=True)
    except Exception as error:
        report.notes.append(f"jax: throughput failed: {type(error).__name__}: {error}"[:300])


# ------------------------------------------------------------------------------------ main
def guarded(report: Report, backend: str, check: Callable[[], None]) -> None:
    """Run one backend's check; a failure outside the phases (import, training) becomes a failed
    'setup' row, and the other backend still runs."""
    try:
        check()
    except Exception as error:
        import traceback

        traceback.print_exc()
        message = f"ERROR {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:200]
        report.add(Row(backend, "setup", "—", "—", None, error=message))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["torch", "jax", "both"], default="both")
    parser.add_argument("--device", default=None,
                        help="cuda[:i] / gpu[:i] / cpu (default: cuda if available for torch, JAX's default backend)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a CPU smoke run")
    parser.add_argument("--out", default=DEFAULT_OUT, help="markdown table (default: %(default)s)")
    parser.add_argument("--jax-matmul-precision", default="highest", choices=["default", "high", "highest"],
                        help="float32 matmul precision on the JAX side (default 'highest': true float32, "
                             "not TF32, so float32 tolerances apply)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    sizes = QUICK if args.quick else FULL
    report = Report(quick=args.quick, header=machine_lines())
    report.header.append(f"Sizes: {sizes}; weights: {weights_line(sizes)}"
                         + (f" on {DATA} (fixed seed), EMA" if sizes.train_steps else ""))
    if args.backend in ("torch", "both"):
        import torch

        if args.quick:
            torch.set_num_threads(1)
        t0 = time.perf_counter()
        guarded(report, "torch", lambda: torch_check(report, sizes, args.device, start))
        print(f"torch done in {time.perf_counter() - t0:.1f} s", flush=True)
    if args.backend in ("jax", "both"):
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with torch
        import jax

        jax.config.update("jax_enable_x64", True)  # the float64 reference; the device side passes float32
        jax.config.update("jax_default_matmul_precision", args.jax_matmul_precision)
        t0 = time.perf_counter()
        guarded(report, "jax", lambda: jax_check(report, sizes, args.device, start, args.jax_matmul_precision))
        print(f"jax done in {time.perf_counter() - t0:.1f} s", flush=True)
    elapsed = time.perf_counter() - start
    for backend in ("torch", "jax"):
        if args.backend in (backend, "both") and backend not in report.on_gpu:
            print(f"{backend}: no GPU found: ran on cpu" if any(n.startswith(f"{backend}: no GPU") for n in report.notes)
                  else f"{backend}: ran on cpu")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(report.markdown(elapsed))
    failed = report.failures()
    print(f"{len(report.rows) - len(failed)} of {len(report.rows)} comparisons hold; {elapsed:.1f} s; table: {args.out}")
    if failed:
        print("FAILED: " + "; ".join(f"{r.backend} {r.phase} vs {r.against}: {r.error or r.comparison.metric}"
                                     for r in failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
