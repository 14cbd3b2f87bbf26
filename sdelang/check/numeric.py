"""``sdelang check --numeric``: does simulating the model keep its density p stationary?

Method (VERIFICATION.md):
1. Draw N particles from p without the dynamics under test (``samplers.py``: exact where p is a
   Gaussian or a product of 1-D factors, a reference sampler otherwise) — or, with
   ``start="wrong"``, a deliberately wrong start: those draws squeezed by ½ about p's mean and
   shifted by one marginal standard deviation (mass moves between modes).
2. Simulate the compiled model (``model.compile(backend).simulate``, fixed-step Euler–Maruyama)
   for a horizon T of several relaxation times (``horizon.py``).
3. Compare the final particles with M = 4N FRESH draws from p (``two_sample.py``: per-marginal KS,
   mean and second-moment z-tests, Mahalanobis and random-projection KS, energy distance), all at
   family-wise level α = 1e-3.

N and the step h come from theory: N = 4000 against M = 16000 resolves a variance ×2 (a missing ½
in the drift, a diffusion ×√2) by KS alone at 95 % power (one-sample N ≈ 1900; the two-sample
effective size is NM/(N+M) = 0.8 N), and the moment z-tests resolve relative variance errors of
z·√(2(1/N + 1/M)) ≈ 0.1. EM's O(h) stationary bias (``step_bias.py``) is kept below a quarter of a
standard error of the z-tests and 15 % of the KS critical gap; it is reported.
"""
from __future__ import annotations

import os
import sys
import time as _time
from dataclasses import dataclass, field
from typing import List, Optional, Tuple, Union

import numpy as np

from ..derive.density_defect import density_defect
from ..errors import DerivationError
from .dynamics import Dynamics
from .horizon import relaxation_horizon
from .samplers import GaussianSampler, InverseCdfSampler, TargetSampler, sampler_for
from .step_bias import StepBias, step_bias
from .target import TargetDensity
from .two_sample import TestOutcome, two_sample_tests

DEFAULT_N = 4000
REFERENCE_FACTOR = 4
BIAS_Z_TOLERANCE = 0.25  # expected moment shift, in standard errors of the z-tests
BIAS_KS_TOLERANCE = 0.15  # expected CDF gap, as a fraction of the KS critical gap
STABILITY = 0.1  # h ≤ STABILITY / (spectral radius of ∂f/∂x at draws from p)


@dataclass
class NumericCheckResult:
    """Outcome of a numeric stationarity check; ``str()`` is a readable report."""

    model: str
    density: str
    backend: str
    n: int
    n_reference: int
    dt: float
    steps: int
    horizon: float
    relaxation_time: float
    horizon_method: str
    sampler: str
    sampler_exact: bool
    start: str
    step_bias: StepBias
    tests: List[TestOutcome]
    alpha: float
    seed: int
    elapsed: float
    notes: List[str] = field(default_factory=list)
    plot_path: Optional[str] = None

    @property
    def passed(self) -> bool:
        """True when no test rejects at the family-wise level α."""
        return not any(t.rejects for t in self.tests)

    @property
    def p_value(self) -> float:
        """The smallest Bonferroni-adjusted p-value (the check fails when it is below α)."""
        return min(t.adjusted_p for t in self.tests)

    @property
    def ks_min_p(self) -> float:
        """The smallest raw KS p-value over marginals, Mahalanobis and projections."""
        return min(t.p_value for t in self.tests if t.name.startswith("KS"))

    @property
    def energy_p(self) -> float:
        return next(t.p_value for t in self.tests if t.family == "permutation")

    @property
    def worst(self) -> TestOutcome:
        return min(self.tests, key=lambda t: t.adjusted_p)

    def __str__(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [
            f"numeric stationarity check of density '{self.density}' under model {self.model} "
            f"({self.backend}, seed {self.seed}): {verdict}",
            f"  particles     N = {self.n} simulated vs M = {self.n_reference} fresh draws from p",
            f"  sampler       {self.sampler}" + ("" if self.sampler_exact else "  [reference, not exact]"),
            f"  start         {'draws from p' if self.start == 'p' else 'wrong start (squeezed ½, shifted 1 sd)'}",
            f"  horizon       T = {self.horizon:.4g} = {self.horizon / self.relaxation_time:.3g} τ, "
            f"τ = {self.relaxation_time:.3g} ({self.horizon_method})",
            f"  step          dt = {self.dt:.3g} ({self.steps} Euler–Maruyama steps)",
            f"  step bias     {self.step_bias}",
            f"  level         α = {self.alpha:g} family-wise (Bonferroni over {len(self.tests) - 1} analytic "
            f"tests at α/2, energy permutation test at α/2)",
            "  tests:",
        ]
        width = max(len(t.name) for t in self.tests)
        for t in self.tests:
            flag = "REJECTS" if t.rejects else "ok"
            lines.append(f"    {t.name:<{width}}  stat {t.statistic:>10.4g}  p {t.p_value:>9.3g}  "
                         f"adj. p {t.adjusted_p:>9.3g}  {flag}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.plot_path:
            lines.append(f"  plot          {self.plot_path}")
        lines.append(f"  time          {self.elapsed:.2f} s")
        return "\n".join(lines)


# ------------------------------------------------------------------------------ planning
def _n_analytic_tests(dim: int) -> int:
    """How many analytic tests ``two_sample_tests`` runs for ``dim`` coordinates."""
    return 3 * dim + (1 + 2 * dim if dim >= 2 else 0)


def ks_critical_gap(n: int, m: int, level: float) -> float:
    """The two-sample KS statistic at which the asymptotic p-value equals ``level``:
    √(-ln(level/2)/2) · √(1/N + 1/M)."""
    return float(np.sqrt(-np.log(level / 2) / 2) * np.sqrt(1.0 / n + 1.0 / m))


def _one_d_parts(target: TargetDensity, sampler: TargetSampler):
    """Per coordinate (log p_i, support_i) when p is a product of 1-D factors, else (None, None)."""
    if not all(len(c) == 1 or target.elementwise for c, _ in sampler.parts):
        return None, None
    blocks = target.blocks()
    logs, supports = [], []
    for b in blocks:
        lp = b.log_density()
        logs.append(lp)
    cache = {}
    for (coords, s) in sampler.parts:
        inner = getattr(s, "inner", s)
        for i in coords:
            key = id(inner) if target.elementwise else i
            if key not in cache:
                if isinstance(inner, InverseCdfSampler):
                    cache[key] = (inner.lo, inner.hi)
                elif isinstance(inner, GaussianSampler):
                    sd = float(np.sqrt(inner.covariance[0, 0]))
                    cache[key] = (float(inner.mean[0]) - 9 * sd, float(inner.mean[0]) + 9 * sd)
                else:
                    return None, None
            supports.append(cache[key])
    return logs, supports


def _nice_step(h: float) -> float:
    """The largest of 1, 2, 5 × 10^k not above h."""
    k = np.floor(np.log10(h))
    for c in (5.0, 2.0, 1.0):
        if c * 10**k <= h * (1 + 1e-12):
            return float(c * 10**k)
    return float(10**k)


def stability_step(dynamics: Dynamics, samples: np.ndarray) -> float:
    """h_stab = 0.1 / (95th percentile of the spectral radius of ∂f/∂x at draws from p)."""
    rate = dynamics.fastest_rate(samples)
    return STABILITY / rate if np.isfinite(rate) and rate > 0 else 1e-2


def choose_step(dynamics: Dynamics, samples, n, m, level, supports, horizon) -> Tuple[float, List[str]]:
    """h from stability and the bias budget (bias ∝ h to first order): the largest 1-2-5 step with
    expected CDF gap ≤ 15 % of the KS critical gap and moment shifts ≤ 0.25 standard errors."""
    notes = []
    h0 = min(stability_step(dynamics, samples), horizon / 50)
    bias = step_bias(dynamics, h0, n, m, samples, supports)
    crit = ks_critical_gap(n, m, level)
    ratios = [bias.ks_gap / (BIAS_KS_TOLERANCE * crit), bias.moment_z / BIAS_Z_TOLERANCE, bias.mean_z / BIAS_Z_TOLERANCE]
    ratios = [r for r in ratios if np.isfinite(r)]
    if not ratios:
        notes.append("the step-size bias could not be estimated (the model is not confined / not stable)")
    return _nice_step(h0 / max([1.0] + ratios)), notes


# ------------------------------------------------------------------------------ simulation
def _to_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu()
    return np.asarray(a, dtype=float)


def _simulate(module, backend: str, x0: np.ndarray, t0: float, horizon: float, dt: float, seed: int,
              chunks: int, show_progress: bool) -> np.ndarray:
    """Final states after ``horizon`` from x0, in ``chunks`` consecutive simulate calls
    (seed·1000 + k for chunk k, so a chunked run is reproducible and independent of the display)."""
    if backend == "torch":
        import torch

        x = torch.as_tensor(x0, dtype=torch.float32)
    else:
        x = np.asarray(x0, dtype=np.float32)
    bounds = np.linspace(t0, t0 + horizon, chunks + 1)
    bar = None
    if show_progress:
        from tqdm import tqdm

        bar = tqdm(total=chunks, desc="simulating", unit="chunk", file=sys.stderr)
    for k in range(chunks):
        ts = np.array([bounds[k], bounds[k + 1]], dtype=np.float64)
        out = module.simulate(x, ts, dt, seed=seed if chunks == 1 else seed * 1000 + k)
        x = out[-1]
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return _to_numpy(x)


def wrong_start(draws: np.ndarray) -> np.ndarray:
    """x0 = μ + ½ (x - μ) + σ: draws from p squeezed about the mean and shifted by one sd."""
    mu, sd = draws.mean(axis=0), draws.std(axis=0)
    return mu + 0.5 * (draws - mu) + sd


def _plot_path(model, plot) -> Optional[str]:
    """None: next to the spec (``<spec>.stationarity.png``) when the model came from a file, else no
    plot; False: no plot; True: next to the spec or ``<model name>.stationarity.png``; a path: there."""
    if plot is False:
        return None
    if plot is None or plot is True:
        if model.path:
            return f"{model.path}.stationarity.png"
        return f"{model.name}.stationarity.png" if plot else None
    return os.fspath(plot)


# ------------------------------------------------------------------------------ the check
def run_numeric_check(
    model,
    density_name: Optional[str] = None,
    backend: str = "torch",
    seed: int = 0,
    plot: Union[None, bool, str, "os.PathLike[str]"] = None,
    *,
    n: int = DEFAULT_N,
    n_reference: Optional[int] = None,
    dt: Optional[float] = None,
    time: Optional[float] = None,
    start: str = "p",
    alpha: float = 1e-3,
    max_steps: int = 20000,
    dimension: Optional[int] = None,
    nets: Optional[dict] = None,
    verbose: bool = False,
    module=None,
) -> NumericCheckResult:
    """Simulate ``model`` from p (or a wrong start) and test that the particles still follow p.

    ``density_name``: the declared density (the only one if None). ``plot``: None saves the plot
    next to the spec (``<spec>.stationarity.png``) when the model was loaded from a file; False
    never plots; True always (``<model name>.stationarity.png`` without a spec); a path: there. ``time``/``dt``/``n`` override the horizon, the step and N. ``module``:
    an already compiled module of ``backend`` (else ``model.compile(backend, **nets)``)."""
    began = _time.perf_counter()
    if start not in ("p", "wrong"):
        raise ValueError(f"start must be 'p' or 'wrong', got {start!r}")
    if model.is_ode:
        raise DerivationError(f"model {model.name} has no noise: a numeric stationarity check needs an SDE")
    rng = np.random.default_rng(seed)
    target = TargetDensity.from_model(model, density_name, dimension)
    declared = model.density(target.name)
    defect = density_defect(model, declared.density_expr, declared.log_expr, is_log=declared.is_log, seed=seed)
    if defect is not None:
        raise DerivationError(f"density '{target.name}' of {model.name} is not a probability density "
                              f"({defect}); there is nothing to sample from")
    sampler = sampler_for(target)
    m = n_reference or REFERENCE_FACTOR * n
    draws = sampler.sample(n, rng)
    x0 = draws if start == "p" else wrong_start(draws)
    dynamics = Dynamics.from_model(model, target.dim)
    logs, supports = _one_d_parts(target, sampler)
    level = alpha / 2 / _n_analytic_tests(target.dim)
    crit = ks_critical_gap(n, m, level)
    horizon = relaxation_horizon(dynamics, draws, supports, tolerance=0.1 * crit, time=time)
    notes: List[str] = []
    T = horizon.time
    if dt is None:
        dt, notes = choose_step(dynamics, draws, n, m, level, supports, T)
    steps = int(np.ceil(T / dt - 1e-9))
    if steps > max_steps:
        h_stab = stability_step(dynamics, draws)
        if T / max_steps <= h_stab:
            notes.append(f"dt = {dt:.3g} would need {steps} steps; capped at max_steps = {max_steps} "
                         f"(dt = {T / max_steps:.3g}): the step-size bias below may be visible at this N")
        else:
            notes.append(f"the horizon {T:.3g} needs more than max_steps = {max_steps} stable steps; "
                         f"cut to {max_steps * h_stab:.3g}")
            T = max_steps * h_stab
        steps = max_steps
    dt = T / steps
    bias = step_bias(dynamics, dt, n, m, draws, supports)
    if not sampler.exact:
        notes.append("p is drawn by a reference sampler (not exact): a rejection can also mean the sampler is off")

    if module is None:
        module = model.compile(backend, **(nets or {}))
    chunks = 10 if steps >= 5000 else 1
    show = verbose or (hasattr(sys.stderr, "isatty") and sys.stderr.isatty())
    final = _simulate(module, backend, x0, float(model.t0), T, dt, seed, chunks, show and chunks > 1)
    fresh = sampler.sample(m, rng)
    names = _coordinate_names(model, target)
    tests = two_sample_tests(final, fresh, rng, alpha, names=names)

    result = NumericCheckResult(
        model=model.name, density=target.name, backend=backend, n=n, n_reference=m, dt=dt, steps=steps,
        horizon=T, relaxation_time=horizon.relaxation_time, horizon_method=horizon.method,
        sampler=sampler.describe(), sampler_exact=sampler.exact, start=start, step_bias=bias, tests=tests,
        alpha=alpha, seed=seed, elapsed=0.0, notes=notes,
    )
    path = _plot_path(model, plot)
    if path is not None:
        from .plot import plot_stationarity

        marginal = logs[0] if (logs is not None and (target.elementwise or target.dim == 1)) else None
        title = f"{model.name}: {target.name} after T = {T:.3g} ({backend}, dt = {dt:.2g}): " + (
            "PASSED" if result.passed else "FAILED")
        result.plot_path = plot_stationarity(path, target.log_density(), x0, final, fresh, names, title, marginal)
    result.elapsed = _time.perf_counter() - began
    return result


def _coordinate_names(model, target: TargetDensity) -> List[str]:
    if target.elementwise:
        return [f"{model.states[0].name}[{i}]" for i in range(target.dim)]
    return [s.name for s in model.states]
