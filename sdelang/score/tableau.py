"""One loop for every few-step sampler: each step is a fixed linear combination of the state, the
network's outputs and a Gaussian draw, with coefficients computed once on the host.

Step i (of N) has S stages. Stage k evaluates the score at the stage state and time τ_ik and turns it
into the solver's own parametrisation (noise or data prediction)

    X_k   = P_ik x_i + q_ik + Σ_{j<k} C_ikj o_j + Σ_h H_ikh o^{hist}_h + Z_ik z_i
    o_k   = U_ik X_k + u_ik + V_ik score(X_k, τ_ik)
    x_i+1 = (the same combination with k = S)

where o^{hist} are the outputs o_0 of earlier steps (multistep methods), z_i ~ N(0, I) (one draw per
step, stochastic methods). A coefficient is a vector acting per component (diagonal kernels) or an
n × n matrix (coupled kernels such as CLD). DDIM, DPM-Solver(++), DEIS, EDM's Heun and ancestral
sampling differ only in these coefficients (:mod:`sdelang.score.exponential`,
:mod:`sdelang.score.stochastic`); the loop is written once over the backend's ops, jitted as one
``lax.scan`` on JAX, and skips every block of coefficients that is zero at all steps.

:class:`Combination` writes such coefficients as algebra: ``alpha_t * (x - m_s) + c * out(0)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from .counting import CountingScore


class Combination:
    """Σ_key coef_key · key over the keys "x", "q" (the constant 1), "z", "o<j>", "h<j>", with per-step
    coefficients: (N, n) vectors, or (N, n, n) matrices when ``full`` ("q"'s coefficient is the
    constant vector itself, (N, n)). Left multiplication by a per-step scalar (N,), vector (N, n)
    or matrix (N, n, n) multiplies every coefficient."""

    __array_ufunc__ = None          # ndarray * Combination -> Combination.__rmul__

    def __init__(self, terms: Dict[str, np.ndarray], full: bool):
        self.terms, self.full = terms, full

    @classmethod
    def key(cls, key: str, steps: int, n: int, full: bool) -> "Combination":
        eye = np.broadcast_to(np.eye(n) if full else np.ones(n), (steps,) + ((n, n) if full else (n,)))
        return cls({key: np.array(eye)}, full)

    @classmethod
    def constant(cls, value: np.ndarray, full: bool) -> "Combination":
        return cls({"q": np.asarray(value, dtype=np.float64)}, full)

    def _map(self, fn) -> "Combination":
        return Combination({k: fn(k, v) for k, v in self.terms.items()}, self.full)

    def __add__(self, other: "Combination") -> "Combination":
        if isinstance(other, np.ndarray):
            other = Combination.constant(other, self.full)
        terms = dict(self.terms)
        for k, v in other.terms.items():
            terms[k] = terms[k] + v if k in terms else v
        return Combination(terms, self.full)

    __radd__ = __add__

    def __neg__(self) -> "Combination":
        return self._map(lambda k, v: -v)

    def __sub__(self, other) -> "Combination":
        return self + (-other if isinstance(other, Combination) else -np.asarray(other))

    def __rsub__(self, other) -> "Combination":
        return (-self) + other

    def __rmul__(self, a) -> "Combination":
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 1:                          # a per-step scalar
            return self._map(lambda k, v: a.reshape((-1,) + (1,) * (v.ndim - 1)) * v)
        if a.ndim == 3:                          # a per-step matrix
            return self._map(lambda k, v: np.einsum("tij,tj->ti", a, v) if v.ndim == 2 else a @ v)
        if self.full:                            # a per-component vector acting on matrices: diag(a) M
            return self._map(lambda k, v: a * v if v.ndim == 2 else a[:, :, None] * v)
        return self._map(lambda k, v: a * v)

    def steps_from(self, first: int) -> "Combination":
        """The same combination without its first ``first`` steps."""
        return self._map(lambda k, v: v[first:])

    def coefficient(self, key: str, shape) -> np.ndarray:
        return self.terms.get(key, np.zeros(shape))


def step_orders(steps: int, order: int, lower_order_final: bool = True) -> np.ndarray:
    """Per-step order of a multistep method: min(order, i + 1) (history builds up) and, below 10
    steps, min(order, steps - i) at the end (DPM-Solver++'s ``lower_order_final``)."""
    i = np.arange(steps)
    orders = np.minimum(order, i + 1)
    if lower_order_final and steps < 10:
        orders = np.minimum(orders, steps - i)
    return orders


def keys(schedule, steps: int):
    """key(name): the Combination "name" with identity coefficients at every step of ``schedule``'s
    kind (vectors for a diagonal kernel, matrices for a coupled one)."""
    return lambda name: Combination.key(name, steps, schedule.n, not schedule.diagonal)


@dataclass(frozen=True)
class Layout:
    """The static part of a tableau (hashable: part of the compiled program on JAX): the stage
    count, history length, whether coefficients are matrices, and which blocks are non-zero."""

    stages: int
    history: int
    full: bool
    used: Tuple[Tuple[str, ...], ...]     # per combination k = 0..S: its non-zero keys
    out_used: Tuple[Tuple[str, ...], ...]  # per stage: which of "U", "u", "V" are non-zero
    identity_start: bool                   # X_0 = x_i at every step
    denoise: bool                          # a final Tweedie step (one more NFE)


@dataclass
class Tableau:
    """Host-side (float64) coefficients of a few-step sampler (module docstring).

    ``times`` (N, S): the network's times; ``combinations``: S + 1 :class:`Combination` (the stage
    inputs, then the step's result); ``outputs``: per stage (U, u, V) arrays; ``final``: (t_end, U, u,
    V), the Tweedie denoiser x̂_0 applied after the last step, or None."""

    method: str
    times: np.ndarray
    combinations: list
    outputs: list
    history: int = 0
    final: Optional[tuple] = None
    #: A tableau run first for the first step(s), whose o_0 seed the history (a multistep method of
    #: order 3 starts with one second-order singlestep: a first-order start would cap it at 2).
    prologue: Optional["Tableau"] = None

    def after_start(self, start: "Tableau") -> "Tableau":
        """This tableau with its first step replaced by ``start`` (a one-step prologue)."""
        steps = start.steps
        return Tableau(self.method, self.times[steps:], [c.steps_from(steps) for c in self.combinations],
                       [tuple(a[steps:] for a in out) for out in self.outputs], self.history, self.final, start)

    def parts(self) -> list:
        """The prologue's parts, then this tableau."""
        return ([] if self.prologue is None else self.prologue.parts()) + [self]

    @property
    def steps(self) -> int:
        return self.times.shape[0]

    def layout_and_arrays(self, n: int, full: bool, history: Optional[int] = None):
        """(:class:`Layout`, {name: coefficient array}) for the loop; ``history`` overrides the
        history length (a prologue keeps the one of the tableau it starts)."""
        steps, S = self.times.shape
        c = (steps, n, n) if full else (steps, n)
        keys = ["x", "q", "z"] + [f"o{j}" for j in range(S)] + [f"h{j}" for j in range(self.history)]
        used, arrays = [], {"times": self.times}
        for k, comb in enumerate(self.combinations):
            nonzero = tuple(key for key in keys if key in comb.terms and np.any(comb.terms[key] != 0))
            used.append(nonzero)
            for key in nonzero:
                arrays[f"{k}{key}"] = comb.coefficient(key, (steps, n) if key == "q" else c)
        out_used = []
        for k, (U, u, V) in enumerate(self.outputs):
            nonzero = tuple(name for name, a in (("U", U), ("u", u), ("V", V)) if np.any(a != 0))
            out_used.append(nonzero)
            for name, a in (("U", U), ("u", u), ("V", V)):
                if name in nonzero:
                    arrays[f"{k}{name}"] = a
        first = self.combinations[0].terms
        identity = used[0] == ("x",) and np.all(first["x"] == (np.eye(n) if full else 1.0))
        if self.final is not None:
            t_end, U, u, V = self.final
            arrays.update(finalt=np.asarray(t_end), finalU=U, finalu=u, finalV=V)
        layout = Layout(S, self.history if history is None else history, full, tuple(used), tuple(out_used),
                        bool(identity), self.final is not None)
        return layout, arrays


def tableau_loop(layouts: Tuple[Layout, ...], arrays: Tuple[dict, ...], ops, score, y, stream):
    """(x_N, NFE): the steps of a tableau, after those of its prologue, from x_0 = y (module
    docstring); ``arrays`` holds each one's coefficients as the framework's arrays."""
    counted = CountingScore(score)
    hist = tuple(ops.zeros_like(y) for _ in range(layouts[-1].history))
    x, nfe, offset = y, 0, 0
    for layout, coefficients in zip(layouts, arrays):
        x, hist, nfe = run_steps(layout, coefficients, ops, counted, x, hist, nfe, stream, offset)
        offset += int(coefficients["times"].shape[0])
    return x, nfe


def run_steps(layout: Layout, arrays: dict, ops, counted, x, hist, nfe, stream, offset: int):
    """The steps of one tableau (a ``fori`` loop); step i draws from ``stream.at(offset + i)``."""
    full = layout.full

    def act(c, a):
        return ops.einsum("ij,bj->bi", c, a) if full else c * a

    def combine(k, i, x, outs, hist, z):
        total = None
        for key in layout.used[k]:
            c = arrays[f"{k}{key}"][i]
            if key == "q":
                term = c
            else:
                value = {"x": x, "z": z}[key] if key in ("x", "z") else (outs if key[0] == "o" else hist)[int(key[1:])]
                term = act(c, value)
            total = term if total is None else total + term
        return total

    def output(prefix, i, X, t):
        s = counted(X, t)
        names = "UuV" if prefix == "final" else layout.out_used[prefix]
        out = None
        for name in names:
            c = arrays[f"{prefix}{name}"] if prefix == "final" else arrays[f"{prefix}{name}"][i]
            term = act(c, X) if name == "U" else c if name == "u" else act(c, s)
            out = term if out is None else out + term
        return out

    def body(i, carry):
        x, hist, nfe = carry
        before = counted.calls
        z = stream.at(offset + i).normal(x.shape, x.dtype) if any("z" in u for u in layout.used) else None
        outs = []
        for k in range(layout.stages):
            X = x if (k == 0 and layout.identity_start) else combine(k, i, x, outs, hist, z)
            outs.append(output(k, i, X, arrays["times"][i, k]))
        x_next = combine(layout.stages, i, x, outs, hist, z)
        if layout.history:
            hist = (outs[0],) + tuple(hist[:-1])
        return x_next, hist, nfe + (counted.calls - before)

    x, hist, nfe = ops.fori(body, (x, hist, nfe), int(arrays["times"].shape[0]))
    if layout.denoise:
        before = counted.calls
        x = output("final", None, x, arrays["finalt"])
        nfe = nfe + (counted.calls - before)
    return x, hist, nfe
