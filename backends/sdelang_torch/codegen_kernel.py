"""Generated methods an affine model implies: its Gaussian perturbation kernel and its priors.

For dx = (A(t) x + b(t)) dt + G(t) dW, ``model.marginal()`` gives x_t | x_0 ~ N(m(t, x_0), Σ(t)).
``_kernel(t, y)`` (y = x_0) returns ``(mean, std)`` when Σ is diagonal and each mean component
depends on its own x_0 component only (VP, VE, sub-VP, OU; elementwise models always), else
``(mean, cov)`` with cov of shape (batch, n, n) (e.g. critically-damped Langevin).
``_prior_normal()`` / ``_init_normal()`` return the (loc, scale) tuples of the spec's
``prior x ~ Normal(loc, scale)`` / ``init`` statements (one entry per state).
"""
from __future__ import annotations

from typing import List

import sympy

from sdelang.emit.printer import ArrayExprPrinter
from sdelang.emit.kernel import gaussian_kernel
from sdelang.errors import EmitError

from .codegen_block import INDENT, block_code
from .codegen_sde import _method, stack_state
from sdelang.emit.names import NameTable


def kernel_method(model, table: NameTable) -> List[str]:
    """``_kernel(self, t, y)``: mean and std (or cov) of x_t given x_{t0} = y, or nothing."""
    kernel = gaussian_kernel(model)
    if kernel is None:
        return []
    to_state = dict(zip(kernel.x0, model.states))
    mean = [e.xreplace(to_state) for e in kernel.mean]
    n = len(mean)
    if kernel.diagonal:
        code = block_code(model, table, mean + list(kernel.std), time_kind="tensor")
        ret = f"{stack_state(model, code.outputs[:n])}, {stack_state(model, code.outputs[n:])}"
        kind = "diagonal"
    else:
        code = block_code(model, table, mean + list(kernel.cov), time_kind="tensor")
        rows = [f"torch.stack([{', '.join(code.outputs[n + i * n:n + (i + 1) * n])}], dim=-1)" for i in range(n)]
        ret = f"{stack_state(model, code.outputs[:n])}, torch.stack([{', '.join(rows)}], dim=-2)"
        kind = "full"
    lines = [f"    kernel_kind = {kind!r}", ""]
    guard = [f"{INDENT}runtime.check_kernel_parameters(self.param_values, {dict(kernel.frozen)!r})"] if kernel.frozen else []
    return lines + _method("_kernel(self, t, y)",
                           "Mean and std (diagonal kernel) or cov of x_t given x_t0 = y (model.marginal()).",
                           guard + list(code.lines), ret)


def _normal_method(model, table: NameTable, name: str, laws) -> List[str]:
    by_state = dict(laws)
    states = [s.name for s in model.states]
    if not states or any(s not in by_state or by_state[s].kind != "normal" for s in states):
        return []
    printer = ArrayExprPrinter("torch", table.symbol_names(), set(), scalar_namespace="math")
    exprs = [sympy.sympify(by_state[s].loc) for s in states] + [sympy.sympify(by_state[s].scale) for s in states]
    params = {sympy.Symbol(p) for p, _ in table.params}
    used = set().union(*(e.free_symbols for e in exprs))
    if used - params:
        raise EmitError(f"{name} of {model.name!r} depends on {sorted(map(str, used - params))}, not only parameters")
    lines = [f"{INDENT}{local} = self.param_values[{p!r}]" for p, local in table.params if sympy.Symbol(p) in used]
    locs = ", ".join(f"float({printer.doprint(e)})" for e in exprs[:len(states)])
    scales = ", ".join(f"float({printer.doprint(e)})" for e in exprs[len(states):])
    return _method(f"_{name}_normal(self)", f"(loc, scale) per state of the spec's `{name} ~ Normal`.",
                   lines, f"({locs},), ({scales},)")


def kernel_methods(model, table: NameTable) -> List[str]:
    """Every affine-model method that this model admits."""
    return (kernel_method(model, table) + _normal_method(model, table, "prior", model.prior)
            + _normal_method(model, table, "init", model.init))
