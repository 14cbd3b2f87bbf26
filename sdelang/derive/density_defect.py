"""Is an unnormalised density p a probability density at all: p ≥ 0 somewhere, and ∫ p < ∞?

A Fokker–Planck residual can vanish for functions that are no densities: p = -e^{-x²/2} (negative),
p = x for dx = dW (not integrable), p = e^{x²/2}. Before calling p stationary we look for such a
defect numerically (50 digits), with the parameters at their values:

* sign: p is evaluated at random points; if it is nowhere positive (or nowhere real) it is no
  density. Where p takes both signs its support is {p > 0} (x³e^{-4x} for CIR lives on x > 0).
* integrability along each axis: from a point where p > 0, x_i → ±R with R = 10², 10⁴, 10⁸ while p
  stays positive; ∫ p dx_i < ∞ needs g(R) = log p + log R → -∞. When g does not fall by at least
  1 from R = 10⁴ to R = 10⁸ (p = x, e^{x²/2}, 1/|x| ...) p is not integrable. The same at x_i → 0
  (r = 10⁻⁴, 10⁻⁸; the boundary of CIR, GBM, Jacobi): p ~ 1/|x| or worse there is not integrable.
  This looks along the axes only: p = e^{-(x-y)²} is not caught.

A defect found is certain (up to 50-digit arithmetic); none found is not a proof of normalisability.
"""
from __future__ import annotations

import math
import random
from typing import Dict, Optional

import sympy

from ..model.symbols import NetOutput

_RADII = (1e2, 1e4, 1e8)
_SMALL_RADII = (1e-4, 1e-8)
_DIGITS = 50


def _value(expr: sympy.Expr, point: Dict[sympy.Symbol, sympy.Expr]) -> Optional[complex]:
    try:
        value = complex(sympy.N(expr.xreplace(point), _DIGITS))
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):
        return None
    if value != value or math.isinf(abs(value)):
        return None
    return value


def _real(value: Optional[complex]) -> Optional[float]:
    if value is None or abs(value.imag) > 1e-12 * (1 + abs(value.real)):
        return None
    return value.real


def _base_point(model, symbols, rng: random.Random) -> Dict[sympy.Symbol, sympy.Expr]:
    values = model.param_substitution()
    point = {}
    for s in symbols:
        if s in values:
            point[s] = values[s]
        elif s == model.time:
            point[s] = sympy.Rational(round(rng.uniform(0.05, 0.95) * 1000), 1000)
        elif s in model.states:
            point[s] = sympy.Rational(round(rng.uniform(-2.0, 2.0) * 1000), 1000)
        else:
            point[s] = sympy.Rational(round(rng.uniform(0.3, 1.7) * 1000), 1000)
    return point


def density_defect(model, density: sympy.Expr, log_density: sympy.Expr, *, is_log: bool = False,
                   samples: int = 24, seed: int = 0, support: Optional[sympy.Expr] = None) -> Optional[str]:
    """Why ``density`` (p, with log p = ``log_density``) is not a probability density, or None.
    ``is_log``: p was declared as log p (then p = exp(log p) > 0 wherever log p is real).
    ``support``: an expression that is positive exactly on the state space (e.g. the diffusion
    coefficient of a 1-D model); points where it is not are outside and not looked at."""
    if support is not None:
        inside = support
        values = model.param_substitution()

        def outside(point) -> bool:
            value = _real(_value(inside.xreplace(values), point))
            return value is None or not value > 0
    else:
        def outside(point) -> bool:
            return False
    if density.has(NetOutput) or log_density.has(NetOutput):
        return None
    symbols = sorted(density.free_symbols | log_density.free_symbols | set(model.states), key=lambda s: s.name)
    rng = random.Random(seed)
    positive_at = None
    seen = []
    for _ in range(samples):
        point = _base_point(model, symbols, rng)
        if outside(point):
            continue
        if is_log:
            value = _real(_value(log_density, point))
            positive = value is not None
            shown = None if value is None else f"log p = {value:.4g}"
        else:
            value = _real(_value(density, point))
            positive = value is not None and value > 0
            shown = None if value is None else f"p = {value:.4g}"
        if shown is not None and len(seen) < 2:
            seen.append(", ".join(f"{s}={float(v):.3g}" for s, v in point.items() if s in model.states)
                        + f": {shown}")
        if positive:
            positive_at = point
            break
    if positive_at is None:
        where = f" (e.g. at {'; '.join(seen)})" if seen else ""
        return ("it is nowhere positive: it is negative, zero or not a real number at every point tried"
                f"{where}; an unnormalised density is positive on its support")
    def profile(x, sign, radii):
        """g(r) = log p + log r with x at sign·r, while the point stays inside p's support."""
        g = []
        for radius in radii:
            point = dict(positive_at)
            point[x] = sympy.Float(sign * radius, _DIGITS)
            log_p = None if outside(point) else _real(_value(log_density, point))
            if log_p is None:
                break  # log p not real: p ≤ 0 there, outside p's support in this direction
            g.append(log_p + math.log(radius))
        return g if len(g) == len(radii) else None

    for x in model.states:
        for sign in (1, -1):
            g = profile(x, sign, _RADII)
            if g is not None and g[-1] > g[-2] - 1:
                where = "+∞" if sign > 0 else "-∞"
                return (f"it is not integrable: as {x} → {where} it does not decay faster than "
                        f"1/|{x}| (log p + log|{x}| goes from {g[-2]:.3g} at |{x}| = 1e4 to {g[-1]:.3g} "
                        f"at 1e8), so ∫ p = ∞")
    for x in model.states:  # a singularity at 0 (CIR, GBM, Jacobi live on x > 0)
        for sign in (1, -1):
            g = profile(x, sign, _SMALL_RADII)
            if g is not None and g[-1] > g[-2] - 1:
                return (f"it is not integrable at {x} = 0: it grows at least like 1/|{x}| there (log p + "
                        f"log|{x}| goes from {g[-2]:.3g} at |{x}| = 1e-4 to {g[-1]:.3g} at 1e-8), so ∫ p = ∞")
    return None
