"""Is a density p a stationary solution of the model's Fokker–Planck equation?

With ℓ = log p and D = G Gᵀ (Itô drift f), dividing the KFP right-hand side by p gives

    r = -Σ_i [∂_i f_i + f_i ∂_i ℓ]
        + ½ Σ_ij [∂_i∂_j D_ij + ∂_i D_ij ∂_j ℓ + ∂_j D_ij ∂_i ℓ + D_ij (∂_i∂_j ℓ + ∂_i ℓ ∂_j ℓ)]
        - ∂_t ℓ                                    (only with ``transient=True``)

(from ∂_j(D_ij p) = p (∂_j D_ij + D_ij ∂_j ℓ), differentiated once more in x_i). p is stationary
iff ∂_t p ≡ 0 and the KFP right-hand side vanishes, i.e. ∂_t ℓ ≡ 0 and r ≡ 0 without the last
term; a time-dependent p_t that solves the KFP (r ≡ 0 with the last term) is checked with
``transient=True``. Working with ℓ keeps Gaussians and Gibbs densities polynomial. For an ODE model
(D = 0) this is Liouville's equation. For an elementwise model p is a product of per-component
factors p(x_i), r = Σ_i r_1(x_i), and r ≡ 0 iff the per-component r_1 ≡ 0.

Decision: substitute assumption symbols (states and time real, parameters as declared), try cheap
rewrites (expand, cancel/together), then ``simplify`` when the expression is small enough. Only a
residual reduced to 0 counts as proven ("holds"). Otherwise evaluate r at random points with 50
digits: a clearly non-zero value means "fails", values all ≈ 0 leave it "undecided".
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import sympy

from ..budget import BudgetExceeded, budget, share
from ..errors import DerivationError
from ..model.parts import log_of
from ..model.symbols import NetOutput
from .calculus import to_ito
from .density_defect import density_defect
from .operators import diffusion_tensor, elementwise_sum, resolve_density

HOLDS, FAILS, UNDECIDED = "holds", "fails", "undecided"


@dataclass(frozen=True)
class StationarityResult:
    """Outcome of ``model.check_stationary(p)``.

    ``status``: "holds" (residual proven identically 0), "fails" (a random point gives a clearly
    non-zero residual), "undecided" (neither). ``holds`` is True only for a proof. ``residual`` is
    (KFP rhs)/p - ∂_t log p in the model's public symbols (0 when it holds; for an elementwise model
    a ``Sum`` over the components). ``spot_checks``: (point, value) pairs evaluated numerically.
    ``method``: how the status was reached.
    """

    model_name: str
    density: sympy.Expr
    residual: sympy.Expr
    status: str
    method: str
    spot_checks: Tuple[Tuple[Dict[str, float], float], ...] = ()
    time_dependent: bool = False
    elementwise: bool = False
    is_ode: bool = False
    #: Why p is no probability density (negative, not integrable), when that was found.
    defect: Optional[str] = None
    #: True when p is stationary for every value of the parameters (``holds`` is at the model's
    #: values); False when it holds at the values only, or not at all.
    general: bool = False
    #: The conditions on the parameters under which the residual vanishes, as sympy equations
    #: ``Eq(c, 0)`` (one per coefficient of the residual as a polynomial in the states; [] when it
    #: holds for all values), or None when the residual is not rational in the states.
    conditions: Optional[list] = None
    #: The parameter values a ``holds`` at the values only was proven at ("kappa=2, theta=1").
    values: Optional[str] = None

    @property
    def holds(self) -> bool:
        return self.status == HOLDS

    def __bool__(self) -> bool:
        return self.holds

    def __str__(self) -> str:
        what = "solves the Fokker–Planck equation of" if self.time_dependent else "is stationary for"
        equation = "Liouville" if self.is_ode else "Fokker–Planck"
        head = f"p = {self.density}"
        if self.defect is not None:
            vanishes = "vanishes" if self.residual == 0 else f"is {self.residual}"
            return (f"{head} is NOT a stationary density of {self.model_name}: it is not a probability "
                    f"density ({self.defect}); its {equation} residual {vanishes}.")
        conditions = ""
        if self.conditions:
            conditions = ("\n  For other values it holds exactly when " +
                          " and ".join(f"{sympy.sstr(c.lhs)} = 0" for c in self.conditions) + ".")
        if self.status == HOLDS:
            scope = "" if self.general else f" at the model's parameter values ({self.values}), not for all values"
            return (f"{head} {what} {self.model_name}{scope}: the {equation} residual "
                    f"(rhs / p{' - ∂t log p' if self.time_dependent else ''}) simplifies to 0 "
                    f"({self.method}).{conditions}")
        points = "; ".join(
            ", ".join(f"{k}={v:.4g}" for k, v in pt.items()) + f" -> {val:.4g}"
            for pt, val in self.spot_checks[:3]
        )
        if self.status == FAILS:
            where = f", e.g. at {points}" if points else ""
            return (f"{head} does NOT {'solve the equation of' if self.time_dependent else 'stay stationary under'} "
                    f"{self.model_name}: the {equation} residual is\n    {self.residual}\n"
                    f"which is not identically 0{where}.{conditions}")
        tail = f" It vanished numerically at {len(self.spot_checks)} random point(s) ({points}), which is not a proof." \
            if self.spot_checks else " It could not be evaluated numerically (learned nets or free symbols)."
        return (f"undecided whether {head} {what} {self.model_name}: the {equation} residual\n"
                f"    {self.residual}\ncould not be simplified to 0 ({self.method}).{tail}")


def log_density_residual(model, log_p: sympy.Expr, transient: bool = True) -> sympy.Expr:
    """r = (KFP rhs)/p - ∂_t log p for ℓ = log p (without ∂_t log p unless ``transient``;
    any symbols; see the module docstring)."""
    m = to_ito(model)
    xs, f, D = m.states, m.drift, diffusion_tensor(m.diffusion)
    n = len(xs)
    dl = [sympy.diff(log_p, x) for x in xs]
    half = sympy.Rational(1, 2)
    r = -sum((sympy.diff(f[i], xs[i]) + f[i] * dl[i] for i in range(n)), sympy.S.Zero)
    for i in range(n):
        for j in range(n):
            if D[i, j] == 0:
                continue
            r += half * (
                sympy.diff(D[i, j], xs[i], xs[j])
                + sympy.diff(D[i, j], xs[i]) * dl[j]
                + sympy.diff(D[i, j], xs[j]) * dl[i]
                + D[i, j] * (sympy.diff(dl[j], xs[i]) + dl[i] * dl[j])
            )
    return r - sympy.diff(log_p, m.time) if transient else r


def parameter_conditions(residual: sympy.Expr, model) -> Optional[list]:
    """[Eq(c_k, 0)]: the residual vanishes for all states iff every coefficient c_k of the numerator
    of the residual, as a polynomial in the states, vanishes; None when it is not rational in the
    states (or the coefficients do not depend on the parameters). Each c_k is factored, and
    duplicates (equal up to a constant factor) are dropped."""
    states = list(model.states)
    assumed = model.assumption_symbols()  # the residual is written in the assumption symbols
    params = {assumed[p.symbol] for p in model.parameters}
    try:
        with budget("the parameter conditions of the residual", seconds=share(1 / 4, 15.0)):
            numerator, _ = sympy.fraction(sympy.together(residual))
            poly = sympy.Poly(sympy.expand(numerator), *states)
            coefficients = [sympy.factor(c) for c in poly.coeffs()]
    except (BudgetExceeded, sympy.PolynomialError, sympy.GeneratorsNeeded):
        return None
    conditions = []
    for c in coefficients:
        if not c.free_symbols & params or c.free_symbols & set(states):
            if c != 0 and not c.free_symbols:  # a non-zero constant: no parameter values help
                return [sympy.Eq(c, 0, evaluate=False)]
            continue
        _, core = c.as_coeff_Mul()
        if all(sympy.cancel(core / other).free_symbols for other in conditions):  # not a multiple
            conditions.append(core)
    return [sympy.Eq(c, 0, evaluate=False) for c in conditions]


def _attempt(name: str, rewrite, expr: sympy.Expr, skipped: list) -> Optional[sympy.Expr]:
    """rewrite(expr), or None when it fails or runs past its share of the budget (then its name
    joins ``skipped``)."""
    try:
        with budget(f"{name} of the Fokker–Planck residual", seconds=share(1 / 4, 15.0)):
            return rewrite(expr)
    except BudgetExceeded:
        skipped.append(name)
        return None
    except Exception:  # a rewrite that cannot handle the expression simply does not help
        return None


def _reduce(r: sympy.Expr, max_ops: int) -> Tuple[sympy.Expr, str]:
    """Cheap rewrites first, then a bounded simplify, each within its share of the time budget;
    returns (reduced form, method)."""
    if r == 0:
        return sympy.S.Zero, "identically 0 as built"
    best, skipped = r, []
    for method, rewrite in (("expand", sympy.expand),
                            ("cancel", lambda e: sympy.cancel(sympy.together(e))),
                            ("expand after powsimp", lambda e: sympy.expand(sympy.powsimp(sympy.powdenest(e, force=True)))),
                            ):
        e = _attempt(method, rewrite, r, skipped)
        if e is None:
            continue
        if e == 0:
            return sympy.S.Zero, method
        if sympy.count_ops(e) < sympy.count_ops(best):
            best = e
    if sympy.count_ops(best) <= max_ops:
        e = _attempt("simplify", sympy.simplify, best, skipped)
        if e is not None and e == 0:
            return sympy.S.Zero, "simplify"
        if e is not None and sympy.count_ops(e) < sympy.count_ops(best):
            best = e
    timed_out = f"; {', '.join(skipped)} ran out of time" if skipped else ""
    return best, (f"not reduced to 0 by expand/cancel/simplify (simplify limited to {max_ops} "
                  f"operations{timed_out})")


def _numeric_value(r: sympy.Expr, point: Dict[sympy.Symbol, sympy.Expr]) -> Optional[Tuple[float, float]]:
    """(r, scale) at a point with 50 digits (r with its sign), or None if not a finite real number there."""
    terms = sympy.Add.make_args(r)
    try:
        values = [complex(sympy.N(term.xreplace(point), 50)) for term in terms]
    except (TypeError, ValueError):
        return None
    total = sum(values)
    if any(v != v or abs(v) == float("inf") for v in values):
        return None
    if abs(total.imag) > 1e-20 * (1 + abs(total.real)):
        return None
    scale = max([1.0] + [abs(v) for v in values])
    return total.real, scale


def _random_point(symbols, model, positive_states: bool, rng: random.Random):
    values = model.param_substitution()
    point = {}
    for s in symbols:
        name = s.name
        if s in values and values[s] is not None:
            point[s] = sympy.nsimplify(values[s]) if isinstance(values[s], float) else values[s]
            continue
        param = next((p for p in model.parameters if p.name == name), None)
        if s in model.states or s == model.time:
            if s == model.time:
                lo, hi = 0.05, 0.95
            else:
                lo, hi = (0.1, 2.0) if positive_states else (-2.0, 2.0)
        elif param is not None and param.integer:
            point[s] = sympy.Integer(rng.randint(1, 4))
            continue
        else:
            lo, hi = 0.3, 1.7
        point[s] = sympy.Rational(round(rng.uniform(lo, hi) * 1000), 1000)
    return point


def _spot_checks(r: sympy.Expr, model, samples: int, seed: int):
    """Random-point evaluations of r; parameters at their values (random when they have none)."""
    if r.atoms(NetOutput) or r.has(sympy.Derivative):
        return ()
    rng = random.Random(seed)
    symbols = sorted(r.free_symbols, key=lambda s: s.name)
    checks = []
    for attempt in range(samples * 4):
        if len(checks) >= samples:
            break
        point = _random_point(symbols, model, positive_states=attempt % 2 == 1, rng=rng)
        value = _numeric_value(r, point)
        if value is None:
            continue
        checks.append(({s.name: float(v) for s, v in point.items()}, value))
    return checks


def check_stationary(model, p, *, log: bool = False, transient: bool = False, max_ops: int = 400,
                     samples: int = 8, seed: int = 0) -> StationarityResult:
    """Check that p (a declared density's name, or a sympy expression in the states) is stationary:
    ∂_t p ≡ 0 and the KFP right-hand side at p ≡ 0. With ``transient=True`` p may depend on t and
    the check is that p_t solves the KFP, ∂_t p = rhs. With ``log=True`` an expression is log p."""
    if isinstance(p, str):
        density = resolve_density(model, p)
        shown, log_p = density.density_expr, density.log_expr
        is_log_density = density.is_log
    else:
        expr = sympy.sympify(p)
        shown = sympy.exp(expr) if log else expr
        log_p = expr if log else None
        is_log_density = log
    public_to_assumed = model.assumption_symbols()
    assumed_to_public = {v: k for k, v in public_to_assumed.items()}
    assumed_model = model.replace(
        drift=model.drift.xreplace(public_to_assumed),
        diffusion=model.diffusion.xreplace(public_to_assumed),
        states=tuple(public_to_assumed[x] for x in model.states),
        time=public_to_assumed[model.time],
    )
    if log_p is None:
        log_p = log_of(shown.xreplace(public_to_assumed))
    else:
        log_p = sympy.expand_log(log_p.xreplace(public_to_assumed), force=True)
    if not log_p.free_symbols & set(assumed_model.states):
        raise DerivationError(f"the density {shown} does not depend on the states of {model.name}")
    time_dependent = transient and log_p.has(assumed_model.time)
    common = dict(model_name=model.name, density=shown, time_dependent=time_dependent,
                  elementwise=model.elementwise, is_ode=model.is_ode)
    if not transient and log_p.has(assumed_model.time):
        changes, _ = _reduce(sympy.diff(log_p, assumed_model.time), max_ops)
        if changes != 0:
            return StationarityResult(
                residual=changes.xreplace(assumed_to_public), status=FAILS,
                method="p depends on time: ∂t log p is not 0 (pass transient=True to check that "
                       "p_t solves the Fokker–Planck equation)", **common)

    raw = log_density_residual(assumed_model, log_p, transient=transient)
    reduced, method = _reduce(raw, max_ops)
    defect = density_defect(model, sympy.sympify(shown), log_p.xreplace(assumed_to_public),
                            is_log=is_log_density, seed=seed)
    if defect is not None:
        residual = reduced.xreplace(assumed_to_public)
        return StationarityResult(residual=elementwise_sum(model, residual) if model.elementwise else residual,
                                  status=FAILS, method="p is not a probability density", defect=defect,
                                  **common)
    if reduced == 0:
        return StationarityResult(residual=sympy.S.Zero, status=HOLDS, method=method, general=True,
                                  conditions=[], **common)
    conditions = parameter_conditions(reduced, assumed_model)
    if conditions is not None:
        conditions = [sympy.Eq(c.lhs.xreplace(assumed_to_public), 0, evaluate=False) for c in conditions]
        common["conditions"] = conditions
    values = {public_to_assumed[p.symbol]: p.value for p in model.parameters if p.value is not None}
    if values and reduced.free_symbols & set(values):
        at_values, value_method = _reduce(reduced.xreplace(values), max_ops)
        if at_values == 0:
            shown_values = ", ".join(f"{s.name}={sympy.sstr(v) if v.is_Integer else format(float(v), 'g')}"
                                     for s, v in values.items() if s in reduced.free_symbols)
            return StationarityResult(residual=sympy.S.Zero, status=HOLDS, general=False, values=shown_values,
                                      method=value_method, **common)

    public = reduced.xreplace(assumed_to_public)
    checks = _spot_checks(public, model, samples, seed)
    residual = elementwise_sum(model, public) if model.elementwise else public
    shown_checks = tuple((pt, val) for pt, (val, _) in checks)
    if any(abs(val) > 1e-8 * scale for _, (val, scale) in checks):
        return StationarityResult(residual=residual, status=FAILS,
                                  method=method + "; non-zero at a random point", spot_checks=shown_checks,
                                  **common)
    return StationarityResult(residual=residual, status=UNDECIDED, method=method,
                              spot_checks=shown_checks, **common)
