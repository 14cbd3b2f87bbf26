"""The reverse-time SDE (Anderson 1982; Song et al. 2021), as a forward model in s = T - t.

Running t from T down to t_min, the Itô SDE dx = f dt + G dW has the reverse

    dx = [f - ∇·D - D ∇_x log p_t] dt + G dW̄,   D = G Gᵀ,  (∇·D)_i = Σ_j ∂_j D_ij.

In its own time s = T - t, s ∈ [0, T - t_min], this is the ordinary forward SDE

    dx = -[f - ∇·D - D score](x, T - s) ds + G(x, T - s) dW,

so it runs with any forward solver. Networks (the learned score and any net of the model) are
called in the original time T - s. The forward prior becomes the reverse model's init and the forward
init its prior; asserts are dropped (they are claims about the forward model).
"""
from __future__ import annotations

from typing import Optional

import sympy

from ..errors import DerivationError
from ..model.symbols import SCORE_NET, net_output
from .calculus import to_ito
from .operators import diffusion_tensor, fresh_name, matrix_divergence, taken_names
from .score import resolve_score, used_nets


def reverse_time_symbol(model) -> sympy.Symbol:
    """``s``, or ``s_`` (``s__`` ...) when the model already uses the name."""
    return sympy.Symbol(fresh_name("s", taken_names(model)))


def _checked_t_min(model, T, t_min) -> sympy.Expr:
    """t_min (default t0), which must lie in [t0, T): the reverse model runs on s ∈ [0, T - t_min]."""
    if t_min is None:
        return sympy.sympify(model.t0)
    if isinstance(t_min, bool) or not isinstance(t_min, (int, float, sympy.Expr)):
        raise DerivationError(f"t_min must be a number, got {t_min!r}")
    t_min = sympy.sympify(t_min)
    params = {p.symbol for p in model.parameters}
    if not t_min.free_symbols <= params or t_min.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
        raise DerivationError(f"t_min must be a finite number (or an expression in the parameters), got {t_min}")
    values = model.param_substitution()
    lo, hi, at = (sympy.sympify(e).xreplace(values) for e in (model.t0, T, t_min))
    if lo.is_number and hi.is_number and at.is_number and not (bool(lo <= at) and bool(at < hi)):
        raise DerivationError(
            f"t_min = {at} must lie in [t0, T) = [{lo}, {hi}) of {model.name}: the reverse-time model "
            f"runs on s in [0, T - t_min]")
    return t_min


def reverse(model, score=None, *, t_min: Optional[sympy.Expr] = None,
            name: Optional[str] = None):
    """The reverse-time model in s = T - t (T = ``model.t1``, t_min = ``model.t0`` by default).

    The reversed model remembers its frame (``reversal = (t, T)``) and the score of its own
    marginal, ``S(x, T - s)``; reversing it again (with the default t_min) returns to time t on
    [t_min, T] with the original drift, diffusion, nets and score: reverse∘reverse = identity."""
    m = to_ito(model)
    if model.reversal is not None and t_min is None:
        t, T = model.reversal  # back to the original frame: s = T - t
        new_time, back = t, {m.time: T - t}
        t0, t1 = T - m.t1, T - m.t0
        reversal = None
    else:
        T = sympy.sympify(m.t1)
        t_min = _checked_t_min(m, T, t_min)
        new_time = reverse_time_symbol(model)
        back = {m.time: T - new_time}
        t0, t1 = sympy.S.Zero, T - t_min
        reversal = (m.time, T)

    score_t, nets = resolve_score(m, score, time_name=new_time.name)
    D = diffusion_tensor(m.diffusion)
    forward_reverse_drift = m.drift - matrix_divergence(D, m.states) - D * score_t
    drift = (-forward_reverse_drift).xreplace(back)
    diffusion = m.diffusion.xreplace(back)

    densities = tuple(type(d)(d.name, d.expr.xreplace(back), d.is_log) for d in m.densities)
    nets = used_nets(m, nets, drift)
    return m.replace(
        name=name or f"{m.name}Reverse",
        drift=drift,
        diffusion=diffusion,
        time=new_time,
        t0=t0,
        t1=t1,
        calculus="ito",
        densities=densities,
        nets=nets,
        init=tuple(m.prior),
        prior=tuple(m.init),
        asserts=(),
        marginal_score=_own_score(score_t.xreplace(back), new_time, reversal, m),
        reversal=reversal,
        path=None,
    )


def _own_score(score, time, reversal, model):
    """The reversed model's marginal score, or None when it is just the learned net ``score``
    at the original time (the default, which needs no statement in the printed spec)."""
    original = reversal[1] - time if reversal is not None else time
    default = [net_output(SCORE_NET, i, original, model.states) for i in range(model.n_states)]
    if all(sympy.sympify(a) == b for a, b in zip(score, default)):
        return None
    return tuple(score)
