"""Generated methods of an ODE module dx/dt = v(t, x): ``forward(t, y)`` for torchdiffeq and the
fused Euler step ``_step(t, y, _h)`` = y + v(t, y) h (``t``, ``_h`` Python floats)."""
from __future__ import annotations

from typing import List

import sympy

from .codegen_block import block_code
from .codegen_sde import _method, stack_state
from sdelang.emit.names import NameTable


def ode_methods(model, table: NameTable) -> List[str]:
    """Source lines of ``forward`` (the velocity, for ``torchdiffeq.odeint``) and ``_step``."""
    velocity = list(model.drift_matrix)
    code = block_code(model, table, velocity, time_kind="tensor")
    out = _method("forward(self, t, y)", "Velocity v(t, y), shape (batch, n) (torchdiffeq's func).",
                  code.lines, stack_state(model, code.outputs))
    h = sympy.Symbol("_h")
    new = [x + h * v for x, v in zip(model.states, velocity)]
    code = block_code(model, table, new, time_kind="float", extra_scalars={h: "_h"})
    out += _method("_step(self, t, y, _h, _dW=None)", "One Euler step y + v h (t and _h are Python floats).",
                   code.lines, stack_state(model, code.outputs))
    return out
