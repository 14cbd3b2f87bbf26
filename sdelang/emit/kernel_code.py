"""Generated code for what a model implies beyond its equations, the same for every backend: the
body of its Gaussian perturbation kernel (:func:`~sdelang.emit.kernel.gaussian_kernel`) and the
(loc, scale) of its Normal ``prior`` / ``init`` laws."""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import sympy

from .block import Target, block_code
from .kernel import gaussian_kernel
from .names import NameTable
from .source import INDENT


@dataclass(frozen=True)
class KernelCode:
    """Lines computing x_t | x_t0 = y ~ N(mean, ·) and the code of ``mean`` (..., n) and of
    ``spread``: the std (..., n) when ``diagonal``, else the cov (..., n, n)."""

    lines: Tuple[str, ...]
    mean: str
    spread: str
    diagonal: bool


def kernel_code(model, table: NameTable, target: Target) -> Optional[KernelCode]:
    """The kernel's body in ``target``'s code (the initial state is ``y``), or None without one.
    A kernel derived at fixed parameter values first checks that the module has those values."""
    kernel = gaussian_kernel(model)
    if kernel is None or not kernel.x0:
        return None
    to_state = dict(zip(kernel.x0, model.states))
    mean = [e.xreplace(to_state) for e in kernel.mean]
    spread = [e.xreplace(to_state) for e in (kernel.std if kernel.diagonal else kernel.cov)]
    code = block_code(model, table, mean + spread, target)
    n = len(mean)
    outputs = code.outputs
    if kernel.diagonal:
        spread_code = target.stack_state(model, outputs[n:])
    else:
        rows = [target.stack(outputs[n + i * n:n + (i + 1) * n], -1) for i in range(n)]
        spread_code = target.stack(rows, -2)
    guard: List[str] = []
    if kernel.frozen:
        values = ", ".join(f"{name!r}: {target.param_value(name, table.param(name))}" for name, _ in kernel.frozen)
        guard = [f"{INDENT}runtime.check_kernel_parameters({{{values}}}, {dict(kernel.frozen)!r})"]
    return KernelCode(tuple(guard) + code.lines, target.stack_state(model, outputs[:n]), spread_code,
                      kernel.diagonal)


def normal_laws(model, laws) -> Optional[Tuple[List[sympy.Expr], List[sympy.Expr]]]:
    """(locs, scales), one per state, when every state has a ``Normal`` law in ``laws``
    (``model.prior`` or ``model.init``), else None."""
    by_state = dict(laws)
    states = [s.name for s in model.states]
    if not states or any(s not in by_state or by_state[s].kind != "normal" for s in states):
        return None
    return ([sympy.sympify(by_state[s].loc) for s in states], [sympy.sympify(by_state[s].scale) for s in states])
