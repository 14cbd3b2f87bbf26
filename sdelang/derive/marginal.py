"""Gaussian marginals of affine SDEs started from a point x0 at t0.

For dx = (A(t) x + b(t)) dt + G(t) dW (Itô; G free of x, so the Stratonovich form is the same),
x_t ~ N(m(t), Σ(t)) with

    m' = A m + b,                 m(t0) = x0
    Σ' = A Σ + Σ Aᵀ + G Gᵀ,       Σ(t0) = 0,

solved with the transition matrix Φ(t, τ) = exp(∫_τ^t A) (exact when A(t) commutes with itself at
all times: A constant, diagonal, or a(t)·A0):

    m(t) = Φ(t, t0) x0 + ∫_{t0}^t Φ(t, τ) b(τ) dτ,
    Σ(t) = ∫_{t0}^t Φ(t, τ) G(τ)G(τ)ᵀ Φ(t, τ)ᵀ dτ.

This is the perturbation kernel p(x_t | x_0) of VP / VE / sub-VP diffusions (Song et al. 2021).
For an elementwise model the result is per component (1 x 1): components are independent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import sympy
from sympy.matrices.exceptions import MatrixError

from ..errors import DerivationError
from ..model.expression_size import brief
from ..model.symbols import SymbolTuple
from .calculus import to_ito
from .operators import diffusion_tensor, fresh_name, taken_names
from .time_integral import definite_integral


@dataclass(frozen=True)
class GaussianMarginal:
    """x_t | x_0 ~ N(mean, cov) for t ≥ t0.

    ``mean``: n x 1 Matrix and ``cov``: n x n Matrix in ``time`` and the initial-state symbols
    ``x0`` (a SymbolTuple, one per state: ``x_0, y_0, ...``, indexable by position or name);
    ``t0`` the start time; ``drift_matrix``/``offset``: A(t) and b(t). For an elementwise model
    mean and cov are the 1 x 1 per-component moments. ``substituted``: parameters replaced by their
    values because A's eigenvalues coincide only at those values (critical damping given as
    numbers), where the generic formula would be 0/0; empty otherwise.
    """

    model_name: str
    mean: sympy.Matrix
    cov: sympy.Matrix
    x0: SymbolTuple
    time: sympy.Symbol
    t0: sympy.Expr
    drift_matrix: sympy.Matrix
    offset: sympy.Matrix
    elementwise: bool = False
    substituted: Optional[dict] = None

    @property
    def variance(self) -> sympy.Matrix:
        """The diagonal of the covariance, n x 1."""
        return sympy.Matrix([self.cov[i, i] for i in range(self.cov.shape[0])])

    def __str__(self) -> str:
        return (f"marginal of {self.model_name} from {tuple(self.x0)} at t = {self.t0}: "
                f"N(mean = {list(self.mean)}, cov = {self.cov.tolist()})")


def affine_parts(model):
    """(A, b) with Itô drift f = A x + b, or DerivationError naming the non-affine term."""
    xs = list(model.states)
    f = model.drift
    n = len(xs)
    A = sympy.zeros(n, n)
    for i in range(n):
        for j in range(n):
            a = sympy.diff(f[i], xs[j])
            if a.free_symbols & set(xs) or a.has(sympy.Derivative):
                raise DerivationError(
                    f"marginal() needs an affine drift, but the drift of {xs[i]} in {model.name}, "
                    f"{brief(f[i])}, is not affine in {xs[j]} (its derivative {brief(a)} depends on the state)"
                )
            A[i, j] = a
    b = (f - A * sympy.Matrix(xs)).xreplace({x: 0 for x in xs})
    b = sympy.Matrix([sympy.expand(e) for e in b])
    for i, e in enumerate(model.diffusion):
        if e.free_symbols & set(xs) or e.has(sympy.Derivative):
            raise DerivationError(
                f"marginal() needs a diffusion independent of the state, but {model.name}'s "
                f"diffusion entry {brief(e)} depends on {', '.join(sorted(str(s) for s in e.free_symbols & set(xs)))}"
            )
    return A, b


def _constant_exponential(A: sympy.Matrix, u: sympy.Symbol) -> sympy.Matrix:
    """exp(A u) for a constant A: Sylvester's formula Σ_k e^{λ_k u} Π_{j≠k} (A - λ_j)/(λ_k - λ_j)
    for distinct eigenvalues, SymPy's Jordan-form exponential otherwise."""
    n = A.shape[0]
    if n >= 5 and not (A.is_upper or A.is_lower):
        raise DerivationError(f"marginal(): the eigenvalues of a coupled {n} x {n} drift matrix have no "
                              "closed form in general (degree ≥ 5)")
    try:
        eigen = A.eigenvals()
    except (MatrixError, NotImplementedError) as exc:
        raise DerivationError(f"marginal(): the eigenvalues of the {n} x {n} drift matrix have no closed "
                              f"form ({exc})") from None
    if len(eigen) == n:
        lambdas = list(eigen)
        out = sympy.zeros(n, n)
        for k, lk in enumerate(lambdas):
            P = sympy.eye(n)
            for j, lj in enumerate(lambdas):
                if j != k:
                    P = P * (A - lj * sympy.eye(n)) / (lk - lj)
            out += sympy.exp(lk * u) * P
        return out.applyfunc(sympy.cancel)
    try:
        return (A * u).exp()
    except (MatrixError, NotImplementedError) as exc:
        raise DerivationError(f"marginal(): exp(A t) of the {n} x {n} drift matrix has no closed form ({exc})") from None


def repeated_at_values(A: sympy.Matrix, values) -> bool:
    """True when A's eigenvalues are distinct symbolically but coincide at the parameter values
    (e.g. critical damping Γ² = 4M given as numbers): the generic formula is 0/0 there."""
    if A.shape[0] >= 5 and not (A.is_upper or A.is_lower):
        return False  # no closed-form eigenvalues: _constant_exponential says so
    try:
        eigen = list(A.eigenvals())
    except (MatrixError, NotImplementedError):
        return False  # no closed-form eigenvalues: _constant_exponential says so
    if len(eigen) < 2:
        return False
    for i in range(len(eigen)):
        for j in range(i + 1, len(eigen)):
            gap = (eigen[i] - eigen[j]).xreplace(values)
            if gap.free_symbols:
                continue
            if abs(complex(sympy.N(gap))) < 1e-12:
                return True
    return False


def _transition(A: sympy.Matrix, t: sympy.Symbol, tau: sympy.Symbol, model_name: str):
    """Φ(t, τ) = exp(∫_τ^t A(u) du) for A constant, diagonal or a(t)·A0."""
    n = A.shape[0]
    if A.is_zero_matrix:
        return sympy.eye(n)
    u = sympy.Dummy("u", real=True)
    if A.is_diagonal() and not A.has(t):
        return sympy.diag(*[sympy.exp(A[i, i] * (t - tau)) for i in range(n)])
    if not A.has(t):
        return _constant_exponential(A, u).xreplace({u: t - tau})
    if A.is_diagonal():
        return sympy.diag(*[sympy.exp(sympy.integrate(A[i, i].xreplace({t: u}), (u, tau, t)))
                            for i in range(n)])
    k = next(i for i, e in enumerate(A) if e != 0)
    scale = A[k]
    A0 = (A / scale).applyfunc(sympy.cancel)
    if A0.has(t):
        raise DerivationError(
            f"marginal() of {model_name}: A(t) = {A.tolist()} does not commute with itself over time, "
            "so its transition matrix has no closed form here"
        )
    elapsed = sympy.integrate(scale.xreplace({t: u}), (u, tau, t))
    return _constant_exponential(A0, u).xreplace({u: elapsed})


def _tidy(e: sympy.Expr, max_ops: int = 300) -> sympy.Expr:
    e = sympy.powsimp(sympy.expand(e), combine="exp")
    if sympy.count_ops(e) <= max_ops:
        try:
            return sympy.simplify(e)
        except Exception:
            return e
    return e


def independent_blocks(A: sympy.Matrix, D: sympy.Matrix) -> List[List[int]]:
    """The states split into groups that neither drift (A) nor noise (D) couple: the connected
    components of the graph with an edge i–j where A_ij, A_ji or D_ij is not 0. Their moments are
    independent, so 100 uncoupled states cost 100 one-state problems, not one 100 x 100 one."""
    n = A.shape[0]
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(n):
            if i != j and (A[i, j] != 0 or D[i, j] != 0):
                parent[root(i)] = root(j)
    groups: dict = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values())


def _moments(A, b, D, t, t0, x0, model_name: str):
    """(mean, cov) of x_t | x_{t0} = x0 for dx = (A x + b) dt + G dW, D = G Gᵀ (module docstring)."""
    n = A.shape[0]
    tau = sympy.Dummy("tau", real=True)
    Phi = _transition(A, t, tau, model_name)
    mean = Phi.xreplace({tau: t0}) * x0
    if not b.is_zero_matrix:
        integrand = Phi * b.xreplace({t: tau})
        mean += sympy.Matrix([definite_integral(e, tau, t0, t) for e in integrand])
    integrand = Phi * D.xreplace({t: tau}) * Phi.T
    cov = sympy.zeros(n, n)
    for i in range(n):
        for j in range(i, n):
            if integrand[i, j] != 0:
                cov[i, j] = cov[j, i] = _tidy(definite_integral(integrand[i, j], tau, t0, t))
    return mean.applyfunc(_tidy), cov


def marginal(model, *, x0_names: Optional[list] = None) -> GaussianMarginal:
    """Mean and covariance of x_t given x_{t0} = x0 for an affine model (DerivationError otherwise)."""
    public_to_assumed = model.assumption_symbols()
    assumed_to_public = {v: k for k, v in public_to_assumed.items()}
    m = to_ito(model)
    m = m.replace(
        drift=m.drift.xreplace(public_to_assumed),
        diffusion=m.diffusion.xreplace(public_to_assumed),
        states=tuple(public_to_assumed[x] for x in m.states),
        time=public_to_assumed[m.time],
    )
    A, b = affine_parts(m)
    substituted = {}
    values = {public_to_assumed[p.symbol]: p.value for p in model.parameters if p.value is not None}
    if A.shape[0] > 1 and not A.has(m.time) and repeated_at_values(A, values):
        substituted = {s: values[s] for s in A.free_symbols if s in values}
        m = m.replace(drift=m.drift.xreplace(substituted), diffusion=m.diffusion.xreplace(substituted))
        A, b = affine_parts(m)
    t, t0 = m.time, sympy.sympify(model.t0).xreplace(public_to_assumed)
    taken = taken_names(model)
    names = x0_names or [fresh_name(f"{x.name}_0", taken) for x in model.states]
    x0 = SymbolTuple(sympy.Symbol(name) for name in names)
    x0_assumed = sympy.Matrix([sympy.Symbol(s.name, real=True) for s in x0])

    D = diffusion_tensor(m.diffusion)
    n = len(m.states)
    mean, cov = sympy.zeros(n, 1), sympy.zeros(n, n)
    for block in independent_blocks(A, D):
        sub = lambda M, cols: M.extract(block, cols)
        block_mean, block_cov = _moments(sub(A, block), sub(b, [0]), sub(D, block), t, t0,
                                         sub(x0_assumed, [0]), model.name)
        for k, i in enumerate(block):
            mean[i] = block_mean[k]
            for l, j in enumerate(block):
                cov[i, j] = block_cov[k, l]

    back = dict(assumed_to_public)
    back.update({a: s for a, s in zip(x0_assumed, x0)})
    return GaussianMarginal(
        model_name=model.name,
        mean=mean.xreplace(back),
        cov=cov.xreplace(back),
        x0=x0,
        time=model.time,
        t0=model.t0,
        drift_matrix=A.xreplace(back),
        offset=b.xreplace(back),
        elementwise=model.elementwise,
        substituted={assumed_to_public[k].name: v for k, v in substituted.items()},
    )
