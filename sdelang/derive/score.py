"""The score ∇_x log p_t that the reverse SDE and the probability-flow ODE need.

Options (``score=``):
  * ``None`` — the score of the model's own marginal (``Model.score_expressions``): a derived
    model's (score(x, T - s) reversed, the exact score a flow was built with, ...), else the
    learned network ``NetOutput(score, i, t, *states)``, with ``Net("score", ...)`` joining the
    model's nets if it is not declared yet;
  * the name of a declared density ``p`` — the exact ∇ log p (p may depend on t);
  * the name of a declared net — that network, called like the learned score;
  * a sympy vector (list, tuple, Matrix; a scalar for one state) in the states and t.
All are returned in the model's own time; callers substitute t = T - s for reverse time. A net is
always called at the original time: score(x, t) in a forward model, score(x, T - s) in a reversed one.
"""
from __future__ import annotations

from typing import Tuple

import sympy

from ..errors import DerivationError, did_you_mean
from ..model.parts import Net
from ..model.symbols import SCORE_NET, NetOutput, net_output
from .operators import gradient



def _net_score(model, name: str, time_name: str) -> Tuple[sympy.Matrix, Tuple[Net, ...]]:
    """The net ``name`` as a score: called at the original time (T - s in a reversed model)."""
    column = sympy.Matrix([net_output(name, i, model.original_time, model.states)
                           for i in range(len(model.states))])
    if any(n.name == name for n in model.nets):
        return column, model.nets
    implicit = Net(name, args=tuple(s.name for s in model.states) + (time_name,))
    return column, tuple(model.nets) + (implicit,)


def resolve_score(model, score, *, time_name: str) -> Tuple[sympy.Matrix, Tuple[Net, ...]]:
    """(score column n x 1 in the model's own time, the nets of the derived model).

    ``score=None`` is the score of the model's own marginal (``Model.score_expressions``): the
    learned net at the original time unless the model carries another. ``time_name`` is the
    derived model's time, used as the dummy argument of an implicit ``net score(x, time)``."""
    n = len(model.states)
    if score is None:
        if model.marginal_score is not None:
            return sympy.Matrix(model.marginal_score), model.nets
        return _net_score(model, SCORE_NET, time_name)
    if isinstance(score, str):
        densities = [d.name for d in model.densities]
        if score in densities:
            log_p = model.density(score).log_expr
            return gradient(log_p, model.states), model.nets
        if any(net.name == score for net in model.nets) or score == SCORE_NET:
            return _net_score(model, score, time_name)
        known = densities + [net.name for net in model.nets]
        raise DerivationError(
            f"score='{score}' names neither a density nor a net of {model.name}"
            f"{did_you_mean(score, known)}"
        )
    if isinstance(score, sympy.MatrixBase):
        entries = list(score)
    elif isinstance(score, (list, tuple)):
        entries = list(score)
    else:
        entries = [score]
    if len(entries) != n:
        raise DerivationError(f"the score needs {n} component(s) (one per state), got {len(entries)}")
    return sympy.Matrix([sympy.sympify(e) for e in entries]), model.nets


def used_nets(model, nets, drift) -> Tuple[Net, ...]:
    """The model's own nets, plus an implicit one only when the derived drift calls it (an ODE
    has D = 0, so its reverse or flow never calls the score). The learned ``score`` is kept only
    while the drift calls it, so that reverse∘reverse ends with the nets it started with."""
    called = {call.net_name for call in sympy.Matrix(drift).atoms(NetOutput)}
    own = {n.name for n in model.nets} - {SCORE_NET}
    return tuple(n for n in nets if n.name in own or n.name in called)
