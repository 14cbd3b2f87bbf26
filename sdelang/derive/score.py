"""The score ∇_x log p_t that the reverse SDE and the probability-flow ODE need.

Options (``score=``):
  * ``None`` — a learned network: component i is ``NetOutput(score, i, t, *states)``, and
    ``Net("score", ...)`` joins the model's nets if it is not declared yet;
  * the name of a declared density ``p`` — the exact ∇ log p (p may depend on t);
  * the name of a declared net — that network, called like the learned score;
  * a sympy vector (list, tuple, Matrix; a scalar for one state) in the states and t.
All are returned in the forward time t; callers substitute t = T - s for reverse time.
"""
from __future__ import annotations

from typing import Tuple

import sympy

from ..errors import DerivationError, did_you_mean
from ..model.model import Net
from ..model.symbols import SCORE_NET, NetOutput, net_output
from .operators import gradient



def _net_score(model, name: str, time_name: str) -> Tuple[sympy.Matrix, Tuple[Net, ...]]:
    column = sympy.Matrix([net_output(name, i, model.time, model.states)
                           for i in range(len(model.states))])
    if any(n.name == name for n in model.nets):
        return column, model.nets
    implicit = Net(name, args=tuple(s.name for s in model.states) + (time_name,))
    return column, tuple(model.nets) + (implicit,)


def resolve_score(model, score, *, time_name: str) -> Tuple[sympy.Matrix, Tuple[Net, ...]]:
    """(score column n x 1 in forward time t, the nets of the derived model).

    ``time_name`` is the derived model's time, used as the dummy argument of an implicit
    ``net score(x, time)`` declaration."""
    n = len(model.states)
    if score is None:
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
    has D = 0, so its reverse or flow never calls the score)."""
    called = {call.net_name for call in sympy.Matrix(drift).atoms(NetOutput)}
    own = {n.name for n in model.nets}
    return tuple(n for n in nets if n.name in own or n.name in called)
