"""Langevin dynamics that keep a given density p stationary.

Plain (overdamped) Langevin:  dx = ½ ∇ log p dt + dW.

Complete recipe (Ma, Chen & Fox 2015): for any positive semi-definite D(x) = G Gᵀ and
antisymmetric Q(x),

    f_i = Σ_j [ (D_ij/2 + Q_ij) ∂_j log p + ∂_j (D_ij/2 + Q_ij) ],   dx = f dt + G dW

has p as a stationary density. ``preconditioner`` gives D (a scalar times I, or a matrix,
constant or state-dependent); G is its Cholesky factor unless ``diffusion=G`` is given (then
D = G Gᵀ).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import sympy

from ..errors import DerivationError
from ..model.model import Model
from ..model.parts import Assertion, Density, Param, log_of
from .operators import gradient, matrix_divergence


def _as_square(value, n: int, what: str) -> sympy.Matrix:
    if isinstance(value, (sympy.MatrixBase, list, tuple)):
        M = sympy.Matrix(value)
    else:
        M = sympy.sympify(value) * sympy.eye(n)
    if M.shape != (n, n):
        raise DerivationError(f"{what} must be {n} x {n} for {n} state(s), got {M.shape[0]} x {M.shape[1]}")
    return M


def langevin(density: Union[sympy.Expr, Model], states: Optional[Sequence[sympy.Symbol]] = None, *,
             preconditioner=None, Q=None, diffusion=None, density_name: str = "p",
             name: str = "Langevin", time: Optional[sympy.Symbol] = None,
             parameters: Sequence[Param] = (), dimension=None) -> Model:
    """The Langevin (or complete-recipe) Model whose stationary density is ``density``.

    ``density``: an unnormalised density in the states, or a Model (its states, parameters, time
    and its density ``density_name`` are used). ``Q`` antisymmetric; ``dimension`` makes an
    elementwise model (one state symbol standing for each component of x[d]).
    """
    if isinstance(density, Model):
        source = density
        p_expr = source.density(density_name).density_expr
        states = states or source.states
        parameters = parameters or source.parameters
        time = time or source.time
        dimension = dimension if dimension is not None else source.dimension
    else:
        p_expr = sympy.sympify(density)
        if states is None:
            raise DerivationError("langevin() needs the state symbols when given an expression")
    xs = list(states)
    n = len(xs)
    time = time or sympy.Symbol("t")
    log_p = log_of(p_expr)

    if diffusion is not None:
        G = sympy.Matrix(diffusion)
        if G.shape[0] != n:
            raise DerivationError(f"diffusion must have {n} row(s), got {G.shape[0]}")
        D = G * G.T
    else:
        D = _as_square(sympy.S.One if preconditioner is None else preconditioner, n, "preconditioner")
        G = sympy.eye(n) if preconditioner is None else D.cholesky(hermitian=False)
    Qm = sympy.zeros(n, n) if Q is None else _as_square(Q, n, "Q")
    if not (Qm + Qm.T).is_zero_matrix and not (Qm + Qm.T).applyfunc(sympy.simplify).is_zero_matrix:
        raise DerivationError("Q must be antisymmetric (Q = -Qᵀ)")

    M = D / 2 + Qm
    drift = M * gradient(log_p, xs) + matrix_divergence(M, xs)
    m = G.shape[1]
    brownians = [sympy.Symbol("W")] if m == 1 else [sympy.Symbol(f"W{j + 1}") for j in range(m)]
    known = {p.symbol for p in parameters}
    free = (p_expr.free_symbols | drift.free_symbols | G.free_symbols) - set(xs) - {time} - known
    if dimension is not None and isinstance(dimension, sympy.Symbol):
        free -= {dimension}
    params = tuple(parameters) + tuple(Param(s) for s in sorted(free, key=lambda s: s.name))
    return Model(
        name=name,
        states=xs,
        drift_matrix=drift,
        diffusion_matrix=G,
        brownians=brownians,
        time=time,
        parameters=params,
        dimension=dimension,
        densities=(Density(density_name, p_expr),),
        asserts=(Assertion("stationary", density_name),),
    )
