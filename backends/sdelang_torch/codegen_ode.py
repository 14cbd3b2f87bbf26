"""Generated methods of an ODE module dx/dt = v(t, x): ``forward(t, y)`` for torchdiffeq and the
fused Euler step ``_step(t, y, _h)`` = y + v(t, y) h (``t``, ``_h`` Python floats)."""
from __future__ import annotations

from typing import List

from sdelang.emit.names import NameTable

from .codegen_block import block_code
from .codegen_sde import _method, stack_state, step_method


def ode_methods(model, table: NameTable) -> List[str]:
    """Source lines of ``forward`` (the velocity, for ``torchdiffeq.odeint``) and ``_step``."""
    code = block_code(model, table, list(model.drift_matrix), time_kind="tensor")
    out = _method("forward(self, t, y)", "Velocity v(t, y), shape (batch, n) (torchdiffeq's func).",
                  code.lines, stack_state(model, code.outputs))
    return out + step_method(model, table)
