"""The JAX target of the shared block printer (``sdelang.emit.block``): ``jnp`` functions for
every expression (parameters may be traced, so never ``math``), parameters read from the module's
fields, batches as leading axes."""
from __future__ import annotations

from typing import Sequence

from sdelang.emit.block import Target, TimeSetup
from sdelang.emit.names import NameTable
from sdelang.emit.printer import ArrayExprPrinter
from sdelang.emit.source import INDENT


class JaxPrinter(ArrayExprPrinter):
    """SymPy expressions as ``jax.numpy`` code."""

    namespace = "jnp"


class JaxTarget(Target):
    """Statements of generated equinox methods: ``t`` brought to the state's dtype (for an
    elementwise model also as ``_te``, broadcast against (..., d)); networks called as
    net(y, t) in original time."""

    printer_class = JaxPrinter

    def param_value(self, name: str, local: str) -> str:
        return f"self.{local}"

    def time_setup(self, model, used: bool, has_nets: bool) -> TimeSetup:
        lines = []
        if used or has_nets:
            lines.append(f"{INDENT}t = jnp.asarray(t, dtype=y.dtype)")
            if model.elementwise and used:
                lines.append(f"{INDENT}_te = runtime.elementwise_time(t)")
        return TimeSetup(lines=tuple(lines), name="_te" if model.elementwise else "t", net_name="t", used=used)

    def call_net(self, model, table: NameTable, net: str, time_code: str, time: TimeSetup) -> str:
        return f"runtime.call_net(self.{table.net(net)}, {net!r}, y, {time_code})"

    def broadcast(self, model, code: str) -> str:
        return f"jnp.full({'y.shape' if model.elementwise else 'y.shape[:-1]'}, {code}, dtype=y.dtype)"

    def stack(self, codes: Sequence[str], axis: int) -> str:
        return f"jnp.stack([{', '.join(codes)}], axis={axis})"


JAX = JaxTarget()
