"""The symbolic model: an Itô or Stratonovich SDE (or an ODE) dx = f(x, t) dt + G(x, t) dW.

Everything in sdelang is a Model: the parser builds one, derivations return one, printers and
backends consume one. Public symbols carry no assumptions (``Symbol("x")``), so users can compare
expressions with symbols of their own; derivations that need assumptions substitute them locally
(see :meth:`Model.assumption_symbols`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional, Tuple

import sympy

from ..budget import budgeted
from .expression_size import has_any
from .functions import RealAbs, RealSign
from .methods import bound
from .parts import Assertion, Density, Distribution, Interval, Net, Param, log_of
from .symbols import SCORE_NET, SymbolTuple, net_output

__all__ = ["Assertion", "Density", "Distribution", "Interval", "Model", "Net", "Param", "log_of"]

Expr = sympy.Expr


def _immutable(m) -> sympy.ImmutableMatrix:
    """The matrix, immutable, with SymPy's complex-argument |z| and sign(z) replaced by the
    real-argument ones (states, time and parameters are real: see :mod:`.functions`)."""
    m = sympy.ImmutableMatrix(m)
    if any(has_any(e, sympy.Abs, sympy.sign) for e in m):
        m = m.replace(sympy.Abs, RealAbs).replace(sympy.sign, RealSign)
    return m


def _same_expr(a, b) -> bool:
    a, b = sympy.sympify(a), sympy.sympify(b)
    if a == b:
        return True
    diff = a - b
    if sympy.expand(diff) == 0:
        return True
    try:
        return sympy.simplify(diff) == 0
    except Exception:  # pragma: no cover - simplify failures count as "different"
        return False


@dataclass(frozen=True, eq=False)
class Model:
    """dx = f(x, t) dt + G(x, t) dW on t in [t0, t1] (Itô unless ``calculus == "stratonovich"``).

    ``drift`` is n x 1 and ``diffusion`` n x m (rows: states, columns: Brownian motions). For an
    elementwise vector model (``state x[d]``) ``states == (x,)`` stands for any component x_i,
    ``dimension`` is the (symbolic) d, drift and diffusion are the per-component 1 x 1 expressions and
    the noise is diagonal (dW is d-dimensional).
    """

    name: str
    states: SymbolTuple
    drift_matrix: sympy.ImmutableMatrix
    diffusion_matrix: sympy.ImmutableMatrix
    brownians: SymbolTuple = SymbolTuple()
    time: sympy.Symbol = sympy.Symbol("t")
    t0: Expr = sympy.S.Zero
    t1: Expr = sympy.S.One
    parameters: Tuple[Param, ...] = ()
    calculus: str = "ito"
    dimension: Optional[Expr] = None
    densities: Tuple[Density, ...] = ()
    nets: Tuple[Net, ...] = ()
    init: Tuple[Tuple[str, Distribution], ...] = ()
    prior: Tuple[Tuple[str, Distribution], ...] = ()
    asserts: Tuple[Assertion, ...] = ()
    #: ∇_x log p of the model's own marginal at its own time (one entry per state), in terms of
    #: nets or densities; None: the learned net ``score`` called at the original time.
    marginal_score: Optional[Tuple[Expr, ...]] = None
    #: (t, T) when this model is the time reversal of a model in time t: its time s is T - t.
    reversal: Optional[Tuple[sympy.Symbol, Expr]] = None
    path: Optional[str] = field(default=None, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "states", SymbolTuple(self.states))
        object.__setattr__(self, "brownians", SymbolTuple(self.brownians))
        object.__setattr__(self, "drift_matrix", _immutable(self.drift_matrix))
        object.__setattr__(self, "diffusion_matrix", _immutable(self.diffusion_matrix))
        n, m = len(self.states), len(self.brownians)
        if self.drift_matrix.shape != (n, 1):
            raise ValueError(f"drift must be {n} x 1, got {self.drift_matrix.shape}")
        if self.diffusion_matrix.shape != (n, m):
            raise ValueError(f"diffusion must be {n} x {m}, got {self.diffusion_matrix.shape}")
        if self.calculus not in ("ito", "stratonovich"):
            raise ValueError(f"calculus must be 'ito' or 'stratonovich', got {self.calculus!r}")
        if self.marginal_score is not None:
            object.__setattr__(self, "marginal_score", tuple(sympy.sympify(e) for e in self.marginal_score))
            if len(self.marginal_score) != n:
                raise ValueError(f"the marginal score needs {n} component(s), got {len(self.marginal_score)}")

    # ----------------------------------------------------------------- the contract's attributes
    @property
    def drift(self) -> sympy.Matrix:
        """f as an n x 1 sympy Matrix (a fresh mutable copy)."""
        return sympy.Matrix(self.drift_matrix)

    @property
    def diffusion(self) -> sympy.Matrix:
        """G as an n x m sympy Matrix (a fresh mutable copy)."""
        return sympy.Matrix(self.diffusion_matrix)

    @property
    def params(self) -> SymbolTuple:
        return SymbolTuple(p.symbol for p in self.parameters)

    @property
    def param_values(self) -> Dict[str, Expr]:
        """The current value of every parameter that has one, by name."""
        return {p.name: p.value for p in self.parameters if p.value is not None}

    def param(self, name: str) -> Param:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def elementwise(self) -> bool:
        return self.dimension is not None

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def n_brownians(self) -> int:
        return len(self.brownians)

    @property
    def is_ode(self) -> bool:
        """True when there is no noise at all (no Brownian motion, or G identically zero)."""
        return self.n_brownians == 0 or all(e == 0 for e in self.diffusion_matrix)

    @property
    def noise_type(self) -> Optional[str]:
        """"additive" (G independent of x), "diagonal" (n = m, G diagonal), "scalar" (m = 1),
        "general" otherwise; None for an ODE."""
        from .noise import classify_noise

        return classify_noise(self)

    def density(self, name: str) -> Density:
        for d in self.densities:
            if d.name == name:
                return d
        raise KeyError(name)

    def net(self, name: str) -> Net:
        for n in self.nets:
            if n.name == name:
                return n
        raise KeyError(name)

    # ------------------------------------------------------------------------- helpers
    def replace(self, **changes) -> "Model":
        """A copy with some fields changed (``drift_matrix=...``, ``name=...`` ...)."""
        for key in ("drift", "diffusion"):
            if key in changes:
                changes[key + "_matrix"] = changes.pop(key)
        return dataclasses.replace(self, **changes)

    def with_params(self, /, **values) -> "Model":
        """The same model with new parameter values (checked against their intervals)."""
        from .parameters import check_overridden_model, override_parameters

        model = self.replace(parameters=override_parameters(self.parameters, values, path=self.path))
        check_overridden_model(model)
        return model

    @property
    def original_time(self) -> Expr:
        """The time of the model this one descends from, in this model's time: ``T - s`` for a
        reversed model, the model's own time otherwise. Nets are called at it."""
        if self.reversal is None:
            return self.time
        return self.reversal[1] - self.time

    def param_substitution(self) -> Dict[sympy.Symbol, Expr]:
        """{symbol: value} for every parameter that has a value (for numeric work)."""
        return {p.symbol: p.value for p in self.parameters if p.value is not None}

    def assumption_symbols(self) -> Dict[sympy.Symbol, sympy.Symbol]:
        """{plain symbol: symbol with assumptions}: states and time real, parameters real and
        positive / nonnegative / integer as their declarations allow. Substitute forward to simplify,
        then back with the inverse mapping."""
        out = {s: sympy.Symbol(s.name, real=True) for s in self.states}
        out[self.time] = sympy.Symbol(self.time.name, real=True)
        for p in self.parameters:
            kw = {"real": True}
            if p.integer:
                kw["integer"] = True
            if p.interval is not None and p.interval.positive:
                kw["positive"] = True
            elif p.interval is not None and p.interval.nonnegative:
                kw["nonnegative"] = True
            out[p.symbol] = sympy.Symbol(p.name, **kw)
        return out

    # ------------------------------------------------------------------------- equality
    def __eq__(self, other) -> bool:
        """Two models are equal when they state the same equations (the name and path aside)."""
        if not isinstance(other, Model):
            return NotImplemented
        simple = ("states", "brownians", "time", "calculus", "parameters", "nets", "init", "prior", "asserts")
        if any(getattr(self, attr) != getattr(other, attr) for attr in simple):
            return False
        if [d.name for d in self.densities] != [d.name for d in other.densities]:
            return False
        if not (_same_expr(self.t0, other.t0) and _same_expr(self.t1, other.t1)):
            return False
        if (self.dimension is None) != (other.dimension is None):
            return False
        if self.dimension is not None and not _same_expr(self.dimension, other.dimension):
            return False
        for a, b in zip(self.densities, other.densities):
            if not _same_expr(a.log_expr, b.log_expr):
                return False
        for a, b in zip(list(self.drift_matrix) + list(self.diffusion_matrix),
                        list(other.drift_matrix) + list(other.diffusion_matrix)):
            if not _same_expr(a, b):
                return False
        if (self.reversal is None) != (other.reversal is None):
            return False
        if self.reversal is not None and not (self.reversal[0] == other.reversal[0]
                                              and _same_expr(self.reversal[1], other.reversal[1])):
            return False
        mine, theirs = self.score_expressions(), other.score_expressions()
        return all(_same_expr(a, b) for a, b in zip(mine, theirs))

    def score_expressions(self) -> Tuple[Expr, ...]:
        """∇ log p of the model's own marginal at its own time: ``marginal_score``, or the learned
        net ``score`` called at the original time (score(x, t); score(x, T - s) reversed)."""
        if self.marginal_score is not None:
            return self.marginal_score
        return tuple(net_output(SCORE_NET, i, self.original_time, self.states) for i in range(self.n_states))

    def __hash__(self) -> int:
        return hash((self.states, self.brownians, self.calculus, self.drift_matrix.shape))

    # ------------------------------------------------- derivations (bound by sdelang.derive: .methods)
    @budgeted('kfp()')
    def kfp(self):
        """∂p/∂t = -Σ_i ∂_i (f_i p) + ½ Σ_ij ∂_i ∂_j (D_ij p), D = G Gᵀ (Itô form)."""
        return bound("kfp")(self)

    def generator(self) -> Callable:
        """φ ↦ L φ = Σ_i f_i ∂_i φ + ½ Σ_ij D_ij ∂_i ∂_j φ."""
        return bound("generator")(self)

    @budgeted('reverse()')
    def reverse(self, score=None, **options) -> "Model":
        """The reverse-time SDE in its own forward time s = T - t (DESIGN.md section 4)."""
        return bound("reverse")(self, score=score, **options)

    @budgeted('probability_flow()')
    def probability_flow(self, score=None, **options) -> "Model":
        """dx/dt = f - ½ ∇·D - ½ D ∇ log p_t: the ODE with the same marginals."""
        return bound("probability_flow")(self, score=score, **options)

    @budgeted('to_ito()')
    def to_ito(self) -> "Model":
        return bound("to_ito")(self)

    @budgeted('to_stratonovich()')
    def to_stratonovich(self) -> "Model":
        return bound("to_stratonovich")(self)

    @budgeted('check_stationary()')
    def check_stationary(self, p, **options):
        return bound("check_stationary")(self, p, **options)

    @budgeted('stationary_density()')
    def stationary_density(self):
        """An unnormalised stationary density (sympy, in the states; parameters symbolic), where one
        follows in closed form (1-D diffusions, detailed balance), else DerivationError."""
        return bound("stationary_density")(self)

    @budgeted('marginal()')
    def marginal(self, **options):
        return bound("marginal")(self, **options)

    @budgeted('divergence()')
    def divergence(self):
        return bound("divergence")(self)

    # --------------------------------------------------- printers (bound by sdelang.printers: .methods)
    def to_sde(self) -> str:
        return bound("to_sde")(self)

    def to_latex(self) -> str:
        return bound("to_latex")(self)

    def _repr_latex_(self) -> str:
        return "$$" + self.to_latex() + "$$"

    def __str__(self) -> str:
        return bound("to_text")(self)

    def __repr__(self) -> str:
        return f"<Model {self.name}: {self.n_states} state(s), {self.n_brownians} Brownian motion(s), {self.calculus}>"

    # ----------------------------------------------- backends (bound by sdelang.emit.registry: .methods)
    @budgeted('compile()')
    def compile(self, backend: str, /, **nets):
        """A ready module of the named backend, networks attached by name (``score=net``)."""
        return bound("compile")(self, backend, **nets)

    @budgeted('emit()')
    def emit(self, backend: str, /, **options) -> str:
        return bound("emit")(self, backend, **options)
