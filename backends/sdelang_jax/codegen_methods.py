"""The model-specific methods of a generated JAX class, each one straight-line code from one CSE
block (``sdelang.emit.block`` with the JAX target):

- ``drift(t, y, args)``: f(t, y), shape of y (batches are leading axes, y is (..., n));
- ``diffusion(t, y, args)``: the lineax operator w ↦ G(t, y) w on the Brownian increment:
  ``DiagonalLinearOperator(g)`` for diagonal (and elementwise) noise, otherwise an
  ``einsum("...nm,...m->...n")`` ``FunctionLinearOperator``;
- ``diffusion_matrix(t, y)``: dense G, (..., n, m) (elementwise: the (..., d) diagonal entries);
- ``euler_maruyama_step(t, y, h, dw)``: y + Δ, Δ = f_Itô(t, y) h + G(t, y) dw, fused (Stratonovich
  models use their Itô drift, converted here with ``Model.to_ito()``);
- ``prior_log_prob`` / ``prior_sample`` from the spec's ``prior`` (Normal), and
  ``perturbation_kernel(x0, t)`` from ``Model.marginal()`` for affine SDEs.
"""
from __future__ import annotations

from typing import List

import sympy

from sdelang.emit.block import block_code, euler_increments, plus_increment, scalar_code, vector_argument
from sdelang.emit.kernel_code import kernel_code, normal_laws
from sdelang.emit.names import NameTable
from sdelang.emit.source import INDENT, method

from .codegen_target import JAX


def drift_method(model, table: NameTable) -> List[str]:
    code = block_code(model, table, list(model.drift_matrix), JAX)
    return method(
        "drift(self, t, y, args=None)",
        f"f(t, y) in the model's own calculus ({model.calculus}), shaped like y = (..., n).",
        list(code.lines) + [f"{INDENT}return {JAX.stack_state(model, code.outputs)}"],
    )


def diffusion_methods(model, table: NameTable, diagonal: bool) -> List[str]:
    """``diffusion`` and ``diffusion_matrix`` (an ODE: a (..., n, 0) matrix only)."""
    if model.is_ode:
        return method("diffusion_matrix(self, t, y)", "This model is an ODE: no noise, shape (..., n, 0).",
                      [f"{INDENT}return jnp.zeros(y.shape + (0,), dtype=y.dtype)"])
    G = model.diffusion_matrix
    n, m = G.shape
    if diagonal:
        code = block_code(model, table, [G[i, i] for i in range(n)], JAX)
        diag = JAX.stack_state(model, code.outputs)
        out = method("diffusion(self, t, y, args=None)",
                     "G(t, y) as a lineax operator on ΔW: diagonal noise, ΔW shaped like y.",
                     list(code.lines) + [f"{INDENT}return lx.DiagonalLinearOperator({diag})"])
        if model.elementwise:
            dense, doc = diag, "The diagonal entries g(t, y) of G, shaped like y = (..., d) (elementwise model)."
        else:
            zero = "jnp.zeros(y.shape[:-1], dtype=y.dtype)"
            rows = [JAX.stack([code.outputs[i] if i == j else zero for j in range(m)], -1) for i in range(n)]
            dense, doc = JAX.stack(rows, -2), "Dense G(t, y), shape (..., n, m)."
        return out + method("diffusion_matrix(self, t, y)", doc, list(code.lines) + [f"{INDENT}return {dense}"])
    code = block_code(model, table, [G[i, j] for i in range(n) for j in range(m)], JAX)
    rows = [JAX.stack(code.outputs[i * m:(i + 1) * m], -1) for i in range(n)]
    out = method("diffusion_matrix(self, t, y)", "Dense G(t, y), shape (..., n, m).",
                 list(code.lines) + [f"{INDENT}return {JAX.stack(rows, -2)}"])
    return out + method(
        "diffusion(self, t, y, args=None)",
        "G(t, y) as a lineax operator w ↦ einsum('...nm,...m->...n', G, w) on ΔW of shape (..., m).",
        [f"{INDENT}return runtime.batched_matrix_operator(self.diffusion_matrix(t, y))"],
    )


def step_method(model, table: NameTable, diagonal: bool) -> List[str]:
    """y + Δ with Δ = f h + G dw, f the Itô drift; dw a (..., m) (or, diagonal, (..., n)) increment."""
    ito = model if model.calculus == "ito" else model.to_ito()
    h = sympy.Symbol("$h")  # '$' cannot occur in an identifier: never a user symbol
    body = [f"{INDENT}_h = h"]  # before the parameters are unpacked: a parameter may be named h
    dws, codes = [], {}
    if not model.is_ode:
        n, m = ito.diffusion_matrix.shape
        dws, codes, unpack = vector_argument(ito, "dw", n if diagonal else m, "_dw")
        body += unpack
    code = block_code(ito, table, euler_increments(ito, diagonal, h, dws), JAX, arrays=codes, scalars={h: "_h"})
    return method(
        "euler_maruyama_step(self, t, y, h, dw)",
        "One Euler–Maruyama step y + f_Itô(t, y) h + G(t, y) dw (dw ~ N(0, h I), None for an ODE).",
        body + list(code.lines) + [f"{INDENT}return {plus_increment(model, JAX, code.outputs)}"],
    )


def prior_methods(model, table: NameTable) -> List[str]:
    laws = normal_laws(model, model.prior)
    if laws is None:
        return []
    locs, scales = laws
    unpack, codes = scalar_code(model, table, JAX, locs + scales, "prior")
    loc_codes, scale_codes = codes[:len(locs)], codes[len(locs):]
    if model.elementwise:
        loc_arr, scale_arr = loc_codes[0], scale_codes[0]
        size = "self.dimension"
    else:
        loc_arr = f"jnp.asarray([{', '.join(loc_codes)}])"
        scale_arr = f"jnp.asarray([{', '.join(scale_codes)}])"
        size = str(model.n_states)
    out = ["    has_prior = True", ""]
    out += method(
        "prior_log_prob(self, x)",
        "Σ_i log N(x_i; loc_i, scale_i²) over the last axis (the spec's prior).",
        [f"{INDENT}_x = x"] + unpack + [
            f"{INDENT}_loc = {loc_arr}",
            f"{INDENT}_scale = {scale_arr} * jnp.ones_like(_x)",
            f"{INDENT}_z = (_x - _loc) / _scale",
            f"{INDENT}return jnp.sum(-0.5 * _z**2 - jnp.log(_scale) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)",
        ],
    )
    out += method(
        "prior_sample(self, batch, seed=0, dtype=None)",
        "Draws loc + scale ξ, ξ ~ N(0, I), of shape (*batch, n); seed an int or a jax.random key.",
        [
            f"{INDENT}_key = runtime.as_key(seed)",
            f"{INDENT}_batch = (batch,) if isinstance(batch, int) else tuple(batch)",
            f"{INDENT}_dtype = dtype or jnp.result_type(float)",
        ] + unpack + [
            f"{INDENT}_xi = jax.random.normal(_key, _batch + ({size},), _dtype)",
            f"{INDENT}return {loc_arr} + {scale_arr} * _xi",
        ],
    )
    return out


def kernel_methods(model, table: NameTable) -> List[str]:
    code = kernel_code(model, table, JAX)
    if code is None:
        return []
    what = "(mean, std), each shaped like x0" if code.diagonal else "(mean (..., n), cov (..., n, n))"
    return ["    has_kernel = True", f"    kernel_is_diagonal = {code.diagonal}", ""] + method(
        "perturbation_kernel(self, x0, t)",
        f"p(x_t | x_0) = N(mean, ·) from Model.marginal(): {what}.",
        [f"{INDENT}y = x0"] + list(code.lines) + [f"{INDENT}return {code.mean}, {code.spread}"],
    )
