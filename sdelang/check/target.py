"""The target density of a numeric stationarity check, as numbers.

A declared density p of the states (``density p = ...`` or ``log_density``) becomes log p with the
parameter values substituted, evaluated on particle arrays of shape (N, dim), and split into
independent blocks: log p = Σ_b log p_b(x_{B_b}) where no additive term of log p couples two blocks.
Each block is then drawn by its own sampler (``samplers.py``).

For an elementwise model (``state x[d]``) the density is read per component,
p(x) = Π_i p_1(x_i), so every one of the d coordinates is its own 1-D block with the same law.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import sympy

from ..derive.operators import resolve_density
from ..errors import DerivationError
from ..model.symbols import NetOutput


def lambdify_rows(symbols: Sequence[sympy.Symbol], exprs: Sequence[sympy.Expr]) -> Callable:
    """f(x) for x of shape (N, k) -> array (N, len(exprs)), from SymPy expressions in ``symbols``.

    Each column is ``exprs[j]`` evaluated row by row (numpy broadcasting; constants broadcast)."""
    fn = sympy.lambdify(list(symbols), list(exprs), modules="numpy")

    def evaluate(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            cols = fn(*(x[:, j] for j in range(x.shape[1])))
        return np.stack([np.broadcast_to(np.asarray(c, dtype=float), (x.shape[0],)) for c in cols], axis=1)

    return evaluate


@dataclass(frozen=True)
class TargetBlock:
    """A group of coordinates whose log-density terms involve no other coordinate."""

    coords: Tuple[int, ...]  # columns of the particle array
    symbols: Tuple[sympy.Symbol, ...]  # the states these columns stand for
    log_expr: sympy.Expr  # log p_b, up to an additive constant

    @property
    def size(self) -> int:
        return len(self.coords)

    def log_density(self) -> Callable[[np.ndarray], np.ndarray]:
        """x (N, size) -> log p_b(x) (N,)."""
        f = lambdify_rows(self.symbols, [self.log_expr])
        return lambda x: f(x)[:, 0]

    def score(self) -> Callable[[np.ndarray], np.ndarray]:
        """x (N, size) -> ∇ log p_b(x) (N, size)."""
        return lambdify_rows(self.symbols, [sympy.diff(self.log_expr, s) for s in self.symbols])


@dataclass(frozen=True)
class TargetDensity:
    """log p of a model's states with numeric parameters; particles have ``dim`` coordinates."""

    name: str
    states: Tuple[sympy.Symbol, ...]
    log_expr: sympy.Expr
    dim: int
    elementwise: bool = False

    @classmethod
    def from_model(cls, model, density_name: Optional[str] = None, dimension: Optional[int] = None) -> "TargetDensity":
        """The named density of ``model`` (the only one when ``density_name`` is None).

        ``dimension`` fixes d for an elementwise model whose d has no value."""
        if density_name is None:
            if len(model.densities) != 1:
                names = ", ".join(d.name for d in model.densities) or "none"
                raise DerivationError(
                    f"model {model.name} declares {len(model.densities)} densities ({names}); name the one to check"
                )
            density_name = model.densities[0].name
        density = resolve_density(model, density_name)
        subs = model.param_substitution()
        log_expr = sympy.expand_log(sympy.sympify(density.log_expr).xreplace(subs), force=True)
        if log_expr.has(NetOutput):
            raise DerivationError(f"density '{density_name}' calls a learned network; it has no numbers to check")
        extra = log_expr.free_symbols - set(model.states)
        if model.time in extra:
            raise DerivationError(f"density '{density_name}' depends on time {model.time}; a stationary density cannot")
        if extra:
            names = ", ".join(sorted(s.name for s in extra))
            raise DerivationError(f"density '{density_name}' uses {names} without a numeric value")
        if model.elementwise:
            d = dimension if dimension is not None else sympy.sympify(model.dimension).xreplace(subs)
            if not sympy.sympify(d).is_number:
                raise DerivationError(f"model {model.name}: the dimension {model.dimension} has no value")
            dim = int(d)
        else:
            dim = model.n_states
        return cls(density_name, tuple(model.states), log_expr, dim, model.elementwise)

    def log_density(self) -> Callable[[np.ndarray], np.ndarray]:
        """x (N, dim) -> log p(x) (N,), up to a constant (summed over components if elementwise)."""
        if self.elementwise:
            one = lambdify_rows(self.states, [self.log_expr])
            return lambda x: one(np.asarray(x, float).reshape(-1, 1))[:, 0].reshape(np.shape(x)).sum(axis=1)
        f = lambdify_rows(self.states, [self.log_expr])
        return lambda x: f(x)[:, 0]

    def blocks(self) -> List[TargetBlock]:
        """Independent groups of coordinates: log p = Σ_b log p_b, no additive term shared.

        Additive terms of the expanded log p are grouped by the states they contain (union-find)."""
        if self.elementwise:
            return [TargetBlock((i,), self.states, self.log_expr) for i in range(self.dim)]
        terms = sympy.Add.make_args(sympy.expand(self.log_expr))
        parent = list(range(len(self.states)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        index = {s: i for i, s in enumerate(self.states)}
        for term in terms:
            ids = sorted(index[s] for s in term.free_symbols if s in index)
            for j in ids[1:]:
                parent[find(j)] = find(ids[0])
        groups: dict = {}
        for i in range(len(self.states)):
            groups.setdefault(find(i), []).append(i)
        blocks = []
        for ids in sorted(groups.values()):
            syms = tuple(self.states[i] for i in ids)
            expr = sympy.Add(*(t for t in terms if t.free_symbols & set(syms)))
            blocks.append(TargetBlock(tuple(ids), syms, expr))
        return blocks
