"""The torch target of the shared block printer (``sdelang.emit.block``): torch functions for
arrays, ``math`` for parameter-only subexpressions, parameters read from ``self.param_values``.

Two flavours of time: ``TorchTarget("tensor")`` (torchsde / torchdiffeq pass ``t`` as a tensor;
it is converted once with ``runtime.as_time``) and ``TorchTarget("float")`` (the fused simulation
step gets ``t`` as a Python float, so time-only subexpressions are printed with ``math``).
"""
from __future__ import annotations

from typing import Sequence

import sympy

from sdelang.emit.block import BlockCode, Target, TimeSetup, block_code as shared_block_code
from sdelang.emit.names import NameTable
from sdelang.emit.printer import ArrayExprPrinter
from sdelang.emit.source import INDENT

__all__ = ["INDENT", "BlockCode", "TORCH", "TORCH_FLOAT", "TorchPrinter", "TorchTarget", "block_code"]


class TorchPrinter(ArrayExprPrinter):
    """SymPy expressions as torch code; parameter-only subexpressions with ``math``."""

    namespace = "torch"
    scalar_namespace = "math"
    positive_first = True  # y_ - _c0, not -_c0 + y_ (one op instead of two, eagerly)


class TorchTarget(Target):
    """Statements of generated torch methods; ``time_kind`` "tensor" or "float"."""

    printer_class = TorchPrinter

    def __init__(self, time_kind: str):
        self.time_kind = time_kind

    def param_value(self, name: str, local: str) -> str:
        return f"self.param_values[{name!r}]"

    def time_setup(self, model, used: bool, has_nets: bool) -> TimeSetup:
        if self.time_kind == "float":
            return TimeSetup(array=False, used=used)
        lines = (f"{INDENT}t = runtime.as_time(t, y, {model.elementwise!r})",) if used else ()
        return TimeSetup(lines=lines, used=used)

    def call_net(self, model, table: NameTable, net: str, time_code: str, time: TimeSetup) -> str:
        if self.time_kind == "tensor" and time.used and model.elementwise:
            time_arg = f"runtime.net_time({time_code}, y)"
        elif self.time_kind == "tensor" and time.used:
            time_arg = f"runtime.as_time({time_code}, y, False)"
        else:
            time_arg = f"y.new_full((), {time_code})"
        return f"runtime.call_net(self.nets_by_name, {net!r}, y, {time_arg})"

    def broadcast(self, model, code: str) -> str:
        return "_zero" if code == "0" else f"(_zero + {code})"

    def broadcast_lines(self, model):
        return [f"{INDENT}_zero = torch.zeros_like({'y' if model.elementwise else 'y[..., 0]'})"]

    def stack(self, codes: Sequence[str], axis: int) -> str:
        return f"torch.stack([{', '.join(codes)}], dim={axis})"


TORCH = TorchTarget("tensor")
TORCH_FLOAT = TorchTarget("float")


def block_code(model, table: NameTable, exprs: Sequence[sympy.Expr], *, time_kind: str,
               extra_arrays=None, extra_scalars=None) -> BlockCode:
    """:func:`sdelang.emit.block.block_code` with the torch target of ``time_kind``."""
    target = TORCH if time_kind == "tensor" else TORCH_FLOAT
    return shared_block_code(model, table, exprs, target, arrays=extra_arrays, scalars=extra_scalars)
