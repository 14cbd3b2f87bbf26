"""Generated methods an affine model implies: its Gaussian perturbation kernel and its priors.

For dx = (A(t) x + b(t)) dt + G(t) dW, ``model.marginal()`` gives x_t | x_0 ~ N(m(t, x_0), Σ(t)).
``_kernel(t, y)`` (y = x_0) returns ``(mean, std)`` when Σ is diagonal and each mean component
depends on its own x_0 component only (VP, VE, sub-VP, OU; elementwise models always), else
``(mean, cov)`` with cov of shape (batch, n, n) (e.g. critically-damped Langevin).
``_prior_normal()`` / ``_init_normal()`` return the (loc, scale) tuples of the spec's
``prior x ~ Normal(loc, scale)`` / ``init`` statements (one entry per state).
The bodies are the shared ones of ``sdelang.emit.kernel_code``.
"""
from __future__ import annotations

from typing import List

from sdelang.emit.block import scalar_code
from sdelang.emit.kernel_code import kernel_code, normal_laws
from sdelang.emit.names import NameTable

from .codegen_block import TORCH
from .codegen_sde import _method


def kernel_method(model, table: NameTable) -> List[str]:
    """``_kernel(self, t, y)``: mean and std (or cov) of x_t given x_{t0} = y, or nothing."""
    code = kernel_code(model, table, TORCH)
    if code is None:
        return []
    kind = "diagonal" if code.diagonal else "full"
    return [f"    kernel_kind = {kind!r}", ""] + _method(
        "_kernel(self, t, y)", "Mean and std (diagonal kernel) or cov of x_t given x_t0 = y (model.marginal()).",
        code.lines, f"{code.mean}, {code.spread}")


def _normal_method(model, table: NameTable, name: str, laws) -> List[str]:
    found = normal_laws(model, laws)
    if found is None:
        return []
    locs, scales = found
    lines, codes = scalar_code(model, table, TORCH, locs + scales, name)
    n = len(locs)
    loc_code = ", ".join(f"float({c})" for c in codes[:n])
    scale_code = ", ".join(f"float({c})" for c in codes[n:])
    return _method(f"_{name}_normal(self)", f"(loc, scale) per state of the spec's `{name} ~ Normal`.",
                   lines, f"({loc_code},), ({scale_code},)")


def kernel_methods(model, table: NameTable) -> List[str]:
    """Every affine-model method that this model admits."""
    return (kernel_method(model, table) + _normal_method(model, table, "prior", model.prior)
            + _normal_method(model, table, "init", model.init))
