"""The Gaussian perturbation kernel p(x_t | x_0) = N(m(t, x_0), Σ(t)) of an affine SDE, ready to print.

Both backends generate ``perturbation_kernel(x0, t)`` from this one reading of ``Model.marginal()``.
The expressions are rewritten for floating point: a variance such as sub-VP's
1 - 2e^{-B} + e^{-2B} loses every digit in float32 as t → 0, while its factored form
expm1(-B)² does not (and 1 - e^{-B} becomes -expm1(-B)).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional, Tuple

import sympy
from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize

from ..budget import BudgetExceeded, budget, share
from ..errors import DerivationError
from ..model.symbols import NetOutput


@dataclass(frozen=True)
class GaussianKernel:
    """x_t | x_0 ~ N(mean, cov): ``mean`` (n entries, in ``x0`` symbols and t); ``std`` the
    per-component standard deviations when Σ is diagonal and m_i depends on x0_i alone (else None);
    ``cov`` the n x n covariance (row-major entries)."""

    mean: Tuple[sympy.Expr, ...]
    cov: Tuple[sympy.Expr, ...]
    std: Optional[Tuple[sympy.Expr, ...]]
    x0: Tuple[sympy.Symbol, ...]
    #: Parameters the kernel was derived at as numbers (the symbolic derivation ran past its
    #: budget): {name: value}; the generated kernel refuses other values of these parameters.
    frozen: Tuple[Tuple[str, float], ...] = ()

    @property
    def diagonal(self) -> bool:
        return self.std is not None


def _common_exponential_form(expr: sympy.Expr) -> sympy.Expr:
    """Write every exponential as a power of one u = exp(B/q) and factor the polynomial in u."""
    exps = sorted(expr.atoms(sympy.exp), key=sympy.default_sort_key)
    if not exps:
        return expr
    base = exps[0].args[0]
    ratios = [sympy.cancel(e.args[0] / base) for e in exps]
    if not all(r.is_Rational for r in ratios):
        return expr
    q = functools.reduce(sympy.ilcm, [r.q for r in ratios], 1)
    u = sympy.Dummy("u", positive=True)
    in_u = expr.xreplace({e: u ** int(r * q) for e, r in zip(exps, ratios)})
    if in_u.has(sympy.exp):
        return expr
    return sympy.factor(in_u).xreplace({u: sympy.exp(base / q)})


def numerically_stable(expr: sympy.Expr) -> sympy.Expr:
    """The same value, without catastrophic cancellation: a^{g(t)} → exp(g log a), exponentials
    factored over one common base, e^z - 1 → expm1(z), log(1 + z) → log1p(z), √(a²) → |a|."""
    expr = sympy.sympify(expr)
    expr = expr.replace(
        lambda e: isinstance(e, sympy.Pow) and bool(e.exp.free_symbols) and e.base != sympy.E
        and not (e.base.free_symbols & e.exp.free_symbols),
        lambda e: sympy.exp(e.exp * sympy.log(e.base)),
    )
    expr = _common_exponential_form(sympy.powsimp(expr, combine="exp"))
    expr = optimize(expr, [expm1_opt, log1p_opt])
    return expr.replace(
        lambda e: isinstance(e, sympy.Pow) and e.exp == sympy.S.Half and isinstance(e.base, sympy.Pow)
        and e.base.exp == 2,
        lambda e: sympy.Abs(e.base.base),
    )


def gaussian_kernel(model) -> Optional[GaussianKernel]:
    """The kernel of an affine SDE without networks, or None when the model has none."""
    if model.is_ode or any(e.has(NetOutput) for e in list(model.drift_matrix) + list(model.diffusion_matrix)):
        return None
    frozen: Tuple[Tuple[str, float], ...] = ()
    try:
        try:
            with budget("marginal() of the perturbation kernel", seconds=share(1 / 6, 10.0)):
                marginal = model.marginal()
        except BudgetExceeded:
            # Symbolic parameters made the exact derivation too slow (a coupled 3 x 3 system has
            # cubic eigenvalues): derive the kernel at the parameters' values instead.
            used = set().union(*(e.free_symbols for e in list(model.drift_matrix) + list(model.diffusion_matrix)))
            values = {p.symbol: p.value for p in model.parameters if p.symbol in used and not p.integer}
            if any(v is None for v in values.values()):
                raise
            numeric = model.replace(drift=model.drift.xreplace(values), diffusion=model.diffusion.xreplace(values))
            marginal = numeric.marginal()
            frozen = tuple((s.name, float(v)) for s, v in sorted(values.items(), key=lambda kv: kv[0].name))
    except (DerivationError, NotImplementedError):
        return None
    mean = [sympy.sympify(e) for e in marginal.mean]
    cov = sympy.Matrix(marginal.cov)
    n = len(mean)
    if cov.shape != (n, n) or any(e.has(sympy.Integral, sympy.Piecewise) for e in mean + list(cov)):
        return None
    x0 = tuple(marginal.x0)
    cov = cov.applyfunc(numerically_stable)
    diagonal = all(cov[i, j] == 0 for i in range(n) for j in range(n) if i != j) and all(
        not (mean[i].free_symbols & (set(x0) - {x0[i]})) for i in range(n)
    )
    std = tuple(numerically_stable(sympy.sqrt(cov[i, i])) for i in range(n)) if diagonal else None
    return GaussianKernel(tuple(mean), tuple(cov), std, x0, frozen)


def check_kernel_parameters(values, frozen) -> None:
    """ValueError unless every parameter a kernel was derived at has that value in ``values``
    ({name: number}; a value that cannot be read as a number, e.g. a traced one, is not checked)."""
    for name, expected in frozen.items():
        try:
            value = float(values[name])
        except (TypeError, ValueError, KeyError):
            continue
        if value != expected:
            raise ValueError(
                f"this module's perturbation kernel was derived at {name} = {expected} (the exact "
                f"derivation in the symbolic parameters ran past its time budget); compile the model "
                f"with {name} = {value} as its value (model.with_params({name}={value}).compile(...))")
