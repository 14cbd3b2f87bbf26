"""Generated methods of an SDE module, in torchsde's conventions.

With f the drift and G the n x m diffusion (rows: states, columns: Brownian motions):
``f(t, y)`` -> (batch, n); ``g(t, y)`` -> (batch, n) for diagonal noise (the diagonal of G; for an
elementwise model ``x[d]`` the per-component g), (batch, n, 1) for scalar noise, (batch, n, m)
otherwise; ``g_prod(t, y, v)`` = G v; ``f_and_g`` / ``f_and_g_prod`` from one CSE block; and the
fused Euler–Maruyama step ``_step(t, y, _h, _dW)`` = y + Δ, Δ = f h + G dW (Itô form), with ``t``
and ``_h`` Python floats.
"""
from __future__ import annotations

from typing import List

import sympy

from sdelang.emit.block import euler_increments, noise_products, plus_increment, vector_argument
from sdelang.emit.lower import is_diagonal
from sdelang.emit.names import NameTable
from sdelang.emit.source import method

from .codegen_block import TORCH, block_code


def torchsde_noise_type(model) -> str:
    """torchsde's noise type: "diagonal" whenever G is diagonal (elementwise models included),
    "scalar" for one Brownian motion, "additive" for state-independent G, else "general"."""
    if is_diagonal(model):
        return "diagonal"
    if model.n_brownians == 1:
        return "scalar"
    if model.noise_type == "additive":
        return "additive"
    return "general"


def stack_state(model, outputs) -> str:
    """(batch, n) from per-state outputs (an elementwise model's single output is already (batch, d))."""
    return TORCH.stack_state(model, outputs)


def _method(signature: str, doc: str, lines, ret: str) -> List[str]:
    return method(signature, doc, [*lines, f"        return {ret}"])


def _noise_vector(model, arg: str, prefix: str):
    """Symbols of a per-Brownian (per-state for diagonal noise) vector argument, their code and
    the lines unpacking them."""
    count = model.n_states if is_diagonal(model) else model.n_brownians
    return vector_argument(model, arg, count, prefix)


def _diffusion_entries(model):
    G = model.diffusion_matrix
    if is_diagonal(model):
        return [G[i, i] for i in range(model.n_states)]
    return list(G)


def _g_return(model, outputs) -> str:
    kind = torchsde_noise_type(model)
    if kind == "diagonal":
        return stack_state(model, outputs)
    if kind == "scalar":
        return f"{TORCH.stack(outputs, -1)}.unsqueeze(-1)"
    m = model.n_brownians
    rows = [TORCH.stack(outputs[i * m:(i + 1) * m], -1) for i in range(model.n_states)]
    return TORCH.stack(rows, -2)


def sde_methods(model, table: NameTable, step_model) -> List[str]:
    """Source lines of f, g, f_and_g, g_prod, f_and_g_prod and the fused step ``_step``.

    ``step_model`` is the Itô form of ``model`` (the model itself unless it is Stratonovich).
    """
    n = model.n_states
    drift = list(model.drift_matrix)
    diff = _diffusion_entries(model)
    out: List[str] = []

    code = block_code(model, table, drift, time_kind="tensor")
    out += _method("f(self, t, y)", "Drift f(t, y), shape (batch, n).", code.lines, stack_state(model, code.outputs))

    code = block_code(model, table, diff, time_kind="tensor")
    out += _method("g(self, t, y)", f"Diffusion in torchsde's '{torchsde_noise_type(model)}' layout.",
                   code.lines, _g_return(model, code.outputs))

    code = block_code(model, table, drift + diff, time_kind="tensor")
    out += _method("f_and_g(self, t, y)", "(f, g) from one block of common subexpressions.", code.lines,
                   f"{stack_state(model, code.outputs[:n])}, {_g_return(model, code.outputs[n:])}")

    syms, codes, unpack = _noise_vector(model, "_v", "_v")
    products = noise_products(model, is_diagonal(model), syms)
    code = block_code(model, table, products, time_kind="tensor", extra_arrays=codes)
    out += _method("g_prod(self, t, y, _v)", "G(t, y) v, shape (batch, n).", unpack + list(code.lines),
                   stack_state(model, code.outputs))

    code = block_code(model, table, drift + products, time_kind="tensor", extra_arrays=codes)
    out += _method("f_and_g_prod(self, t, y, _v)", "(f, G v) from one block of common subexpressions.",
                   unpack + list(code.lines),
                   f"{stack_state(model, code.outputs[:n])}, {stack_state(model, code.outputs[n:])}")

    out += step_method(step_model, table)
    return out


def step_method(model, table: NameTable) -> List[str]:
    """``_step(t, y, _h, _dW)``: one Itô Euler–Maruyama step y + Δ, Δ = f(t, y) h + G(t, y) dW, fused.
    For an ODE: y + v(t, y) h.

    A model with several states computes Δ with whole-tensor operations where it can: the drift
    components are stacked once and scaled by ``_h`` (not scaled and added one component at a
    time, then stacked), and diagonal additive noise with one coefficient c for every state
    adds ``c*_dW`` (``_dW`` when c = 1) in one operation. Other noise keeps Δ per component."""
    h = sympy.Symbol("$h")
    if model.is_ode:
        syms, codes, unpack = [], {}, []
        signature, doc = "_step(self, t, y, _h, _dW=None)", "One Euler step y + v h (t and _h are Python floats)."
    else:
        syms, codes, unpack = _noise_vector(model, "_dW", "_dW")
        signature = "_step(self, t, y, _h, _dW)"
        doc = "One Euler–Maruyama step y + f h + G dW (Itô form; t and _h are Python floats)."
    whole = _whole_tensor_step(model, table)
    if whole is not None:
        lines, delta = whole
        return _method(signature, doc, lines, f"y + ({delta})")
    increments = euler_increments(model, is_diagonal(model), h, syms)
    code = block_code(model, table, increments, time_kind="float", extra_arrays=codes, extra_scalars={h: "_h"})
    return _method(signature, doc, unpack + list(code.lines), plus_increment(model, TORCH, code.outputs))


def _whole_tensor_step(model, table: NameTable):
    """(lines, Δ code) of ``_h*torch.stack([f_0, ...]) [+ c*_dW]`` for a non-elementwise ODE or
    a diagonal-noise SDE whose diffusion coefficients are all one state-independent expression c;
    else None."""
    if model.elementwise:
        return None
    n = model.n_states
    drift = list(model.drift_matrix)
    if model.is_ode:
        code = block_code(model, table, drift, time_kind="float")
        return list(code.lines), f"_h*{stack_state(model, code.outputs)}"
    diff = _diffusion_entries(model)
    if not is_diagonal(model) or model.noise_type != "additive" or any(g != diff[0] for g in diff[1:]):
        return None  # c*_dW broadcasts only when c is one batch-independent number
    dw = sympy.Symbol("$dW")
    code = block_code(model, table, drift + [diff[0] * dw], time_kind="float", extra_arrays={dw: "_dW"})
    return list(code.lines), f"_h*{stack_state(model, code.outputs[:n])} + {code.outputs[n]}"


def noise_shape_code(model) -> str:
    """Shape of one step's Brownian increment, from ``y``: (batch, d), (batch, n) or (batch, m)."""
    if model.elementwise:
        return "tuple(y.shape)"
    count = model.n_states if is_diagonal(model) else model.n_brownians
    return f"(y.shape[0], {count})"
