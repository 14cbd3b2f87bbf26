"""Model → JAX source: one ``equinox.Module`` class per model.

The class subclasses :class:`sdelang_jax.runtime.CompiledModel` and holds the parameters as pytree
fields (``: int`` parameters static) and the networks as fields. Model-specific methods, each one
straight-line code from one CSE block (``sdelang.emit.lower``):

- ``drift(t, y, args)``: f(t, y), shape of y (batches are leading axes, y is (..., n));
- ``diffusion(t, y, args)``: the lineax operator w ↦ G(t, y) w on the Brownian increment:
  ``DiagonalLinearOperator(g)`` for diagonal (and elementwise) noise, otherwise an
  ``einsum("...nm,...m->...n")`` ``FunctionLinearOperator``;
- ``diffusion_matrix(t, y)``: dense G, (..., n, m) (elementwise: the (..., d) diagonal entries);
- ``euler_maruyama_step(t, y, h, dw)``: y + f_Itô(t, y) h + G(t, y) dw, fused (Stratonovich models
  use their Itô drift, converted here with ``Model.to_ito()``);
- ``prior_log_prob`` / ``prior_sample`` from the spec's ``prior`` (Normal), and
  ``perturbation_kernel(x0, t)`` from ``Model.marginal()`` for affine SDEs.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import sympy

from sdelang.emit.embedded_spec import spec_text
from sdelang.emit.lower import Block, lower_block, numeric_params
from sdelang.emit.names import NameTable, comment, name_table
from sdelang.model.symbols import SCORE_NET
from sdelang.emit.printer import ArrayExprPrinter, print_block
from sdelang.model.expression_size import brief

from .kernel import kernel_expressions

INDENT = "        "

# Attribute names of the generated class (and its base): parameters and nets are renamed around them.
CLASS_MEMBERS = frozenset(
    {
        "drift", "diffusion", "diffusion_matrix", "euler_maruyama_step", "terms", "drift_fn",
        "simulate", "brownian_shape", "noise_shape", "reverse", "probability_flow",
        "perturbation_kernel", "prior_log_prob", "prior_sample", "dsm_loss", "log_prob",
        "dimension", "model_name", "state_names", "param_names", "net_names", "param_fields", "net_fields", "n_states",
        "n_brownians", "is_sde", "elementwise", "calculus", "noise_type", "diagonal_noise", "t0",
        "t1", "sdelang_model", "sdelang_spec", "has_prior", "has_kernel", "kernel_is_diagonal",
    }
)


def jax_name_table(model) -> NameTable:
    """The shared name table; the class also carries the learned ``score`` (its reverse-time and
    probability-flow modules and ``dsm_loss`` call it) unless an identifier already names it."""
    return name_table(model, reserved=CLASS_MEMBERS, extra_nets=(SCORE_NET,))


class _Names:
    """Symbol → Python name for one model (states, parameters, time), from the name table."""

    def __init__(self, model):
        self.model = model
        self.table = jax_name_table(model)
        self.states = {s: local for s, local in self.table.states}
        self.params = {sympy.Symbol(name): local for name, local in self.table.params}
        self.nets = dict(self.table.nets)

    def printer(self, *, time_var: str, extra: Optional[Dict[sympy.Symbol, str]] = None) -> ArrayExprPrinter:
        names = dict(self.states)
        names.update(self.params)
        names.update(extra or {})
        names[self.model.time] = time_var
        return ArrayExprPrinter("jnp", names, list(self.model.states) + [self.model.time])


def _time_var(model) -> str:
    return "_te" if model.elementwise else "t"


def _preamble(model, names: _Names, block: Block, *, time_arg: bool = True) -> List[str]:
    """Unpack the parameters and states the block uses, and bring t to the state's dtype."""
    lines = []
    for p in model.parameters:
        if p.name in block.params_used:
            name = names.params[p.symbol]
            lines.append(f"{INDENT}{name} = self.{name}")
    if model.elementwise:
        lines.append(f"{INDENT}{names.states[model.states[0]]} = y")
    else:
        for i, s in enumerate(model.states):
            lines.append(f"{INDENT}{names.states[s]} = y[..., {i}]")
    if time_arg and (block.uses_time or block.net_calls):
        lines.append(f"{INDENT}t = jnp.asarray(t, dtype=y.dtype)")
        if model.elementwise and block.uses_time:
            lines.append(f"{INDENT}_te = runtime.elementwise_time(t)")
    return lines


def _print_block(model, names: _Names, block: Block,
                 extra: Optional[Dict[sympy.Symbol, str]] = None) -> Tuple[List[str], List[str]]:
    """Lines computing the block and the code of each output (constant outputs broadcast to the
    state's shape). Networks are called on the whole state in original time: net(y, t).
    ``extra`` names symbols of the generated code's own (step size, increments)."""
    printer = names.printer(time_var=_time_var(model), extra=extra)
    shape = "y.shape" if model.elementwise else "y.shape[:-1]"
    lines, outputs = print_block(
        block, printer,
        call_net=lambda net, time_code: f"runtime.call_net(self.{names.nets[net]}, {net!r}, y, {time_code})",
        broadcast=lambda code: f"jnp.full({shape}, {code}, dtype=y.dtype)",
        indent=INDENT, time_printer=names.printer(time_var="t"))
    return lines, outputs


def _stack(codes: Sequence[str], axis: int) -> str:
    return f"jnp.stack([{', '.join(codes)}], axis={axis})"


def _method(signature: str, doc: str, body: List[str]) -> List[str]:
    return [f"    def {signature}:", f'{INDENT}"""{doc}"""'] + body + [""]


# ---------------------------------------------------------------------------- the methods
def _drift_method(model, names: _Names) -> List[str]:
    block = lower_block(model, list(model.drift_matrix))
    lines, outs = _print_block(model, names, block)
    value = outs[0] if model.elementwise else _stack(outs, -1)
    return _method(
        "drift(self, t, y, args=None)",
        f"f(t, y) in the model's own calculus ({model.calculus}), shaped like y = (..., n).",
        _preamble(model, names, block) + lines + [f"{INDENT}return {value}"],
    )


def _diagonal_entries(model) -> List[sympy.Expr]:
    G = model.diffusion_matrix
    return [G[i, i] for i in range(G.shape[0])]


def _diffusion_methods(model, names: _Names, diagonal: bool) -> List[str]:
    G = model.diffusion_matrix
    n, m = G.shape
    out: List[str] = []
    if diagonal:
        block = lower_block(model, _diagonal_entries(model))
        lines, outs = _print_block(model, names, block)
        diag = outs[0] if model.elementwise else _stack(outs, -1)
        out += _method(
            "diffusion(self, t, y, args=None)",
            "G(t, y) as a lineax operator on ΔW: diagonal noise, ΔW shaped like y.",
            _preamble(model, names, block) + lines + [f"{INDENT}return lx.DiagonalLinearOperator({diag})"],
        )
        if model.elementwise:
            dense_body = _preamble(model, names, block) + lines + [f"{INDENT}return {diag}"]
            doc = "The diagonal entries g(t, y) of G, shaped like y = (..., d) (elementwise model)."
        else:
            dense_lines = list(lines)
            zero = "jnp.zeros(y.shape[:-1], dtype=y.dtype)"
            rows = [_stack([outs[i] if i == j else zero for j in range(m)], -1) for i in range(n)]
            dense_body = _preamble(model, names, block) + dense_lines + [f"{INDENT}return {_stack(rows, -2)}"]
            doc = "Dense G(t, y), shape (..., n, m)."
        out += _method("diffusion_matrix(self, t, y)", doc, dense_body)
        return out
    block = lower_block(model, [G[i, j] for i in range(n) for j in range(m)])
    lines, outs = _print_block(model, names, block)
    rows = [_stack(outs[i * m:(i + 1) * m], -1) for i in range(n)]
    dense = _stack(rows, -2)
    body = _preamble(model, names, block) + lines
    out += _method(
        "diffusion_matrix(self, t, y)", "Dense G(t, y), shape (..., n, m).", body + [f"{INDENT}return {dense}"]
    )
    out += _method(
        "diffusion(self, t, y, args=None)",
        "G(t, y) as a lineax operator w ↦ einsum('...nm,...m->...n', G, w) on ΔW of shape (..., m).",
        [f"{INDENT}return runtime.batched_matrix_operator(self.diffusion_matrix(t, y))"],
    )
    return out


def _ode_diffusion_method(model) -> List[str]:
    return _method(
        "diffusion_matrix(self, t, y)",
        "This model is an ODE: no noise, shape (..., n, 0).",
        [f"{INDENT}return jnp.zeros(y.shape + (0,), dtype=y.dtype)"],
    )


def _step_method(model, names: _Names, diagonal: bool) -> List[str]:
    """y + f h + G dw with f the Itô drift; dw a (..., m) (or, diagonal, (..., n)) increment."""
    ito = model if model.calculus == "ito" else model.to_ito()
    # '$' cannot occur in an identifier: these symbols never equal a user symbol
    h = sympy.Symbol("$h")
    f = list(ito.drift_matrix)
    G = ito.diffusion_matrix
    n, m = G.shape
    if not model.is_ode:
        count = 1 if model.elementwise else n if diagonal else m
        dws = [sympy.Symbol(f"$dw{j}") for j in range(count)]
        if diagonal:
            incs = [f[i] * h + G[i, i] * dws[i] for i in range(n)]
        else:
            incs = [f[i] * h + sum((G[i, j] * dws[j] for j in range(m)), sympy.S.Zero) for i in range(n)]
    else:
        dws = []
        incs = [fi * h for fi in f]
    extra = {h: "_h"}
    block = lower_block(ito, incs)
    body = [f"{INDENT}_h = h"]  # before the parameters are unpacked: a parameter may be named h
    if model.elementwise and dws:
        extra[dws[0]] = "_dw"
        body.append(f"{INDENT}_dw = dw")
    else:
        for j, dw in enumerate(dws):
            extra[dw] = f"_dw{j}"
            body.append(f"{INDENT}_dw{j} = dw[..., {j}]")
    body += _preamble(ito, names, block)
    lines, outs = _print_block(ito, names, block, extra)
    value = outs[0] if model.elementwise else _stack(outs, -1)
    return _method(
        "euler_maruyama_step(self, t, y, h, dw)",
        "One Euler–Maruyama step y + f_Itô(t, y) h + G(t, y) dw (dw ~ N(0, h I), None for an ODE).",
        body + lines + [f"{INDENT}return y + {value}"],
    )


# ---------------------------------------------------------------------------- prior and kernel
def _normal_priors(model) -> Optional[List[Tuple[sympy.Expr, sympy.Expr]]]:
    """(loc, scale) per state when every state has a Normal prior, else None."""
    priors = dict(model.prior)
    out = []
    for s in model.states:
        dist = priors.get(s.name)
        if dist is None or dist.kind != "normal":
            return None
        out.append((sympy.sympify(dist.loc), sympy.sympify(dist.scale)))
    return out


def _scalar_code(model, names: _Names, expr: sympy.Expr) -> Tuple[List[str], str]:
    """Code of a parameter-only expression, with the parameters it uses unpacked from self."""
    printer = names.printer(time_var="t")
    lines = []
    for p in model.parameters:
        if p.symbol in expr.free_symbols:
            lines.append(f"{INDENT}{names.params[p.symbol]} = self.{names.params[p.symbol]}")
    return lines, printer.doprint(expr)


def _prior_methods(model, names: _Names) -> List[str]:
    priors = _normal_priors(model)
    if priors is None:
        return []
    locs = [loc for loc, _ in priors]
    scales = [scale for _, scale in priors]
    exprs = locs + scales
    unpack = []
    for p in model.parameters:
        if any(p.symbol in e.free_symbols for e in exprs):
            unpack.append(f"{INDENT}{names.params[p.symbol]} = self.{names.params[p.symbol]}")
    printer = names.printer(time_var="t")
    loc_codes = [printer.doprint(e) for e in locs]
    scale_codes = [printer.doprint(e) for e in scales]
    if model.elementwise:
        loc_arr, scale_arr = loc_codes[0], scale_codes[0]
        size = "self.dimension"
    else:
        loc_arr = f"jnp.asarray([{', '.join(loc_codes)}])"
        scale_arr = f"jnp.asarray([{', '.join(scale_codes)}])"
        size = str(model.n_states)
    out = ["    has_prior = True", ""]
    out += _method(
        "prior_log_prob(self, x)",
        "Σ_i log N(x_i; loc_i, scale_i²) over the last axis (the spec's prior).",
        [f"{INDENT}_x = x"]
        + unpack
        + [
            f"{INDENT}_loc = {loc_arr}",
            f"{INDENT}_scale = {scale_arr} * jnp.ones_like(_x)",
            f"{INDENT}_z = (_x - _loc) / _scale",
            f"{INDENT}return jnp.sum(-0.5 * _z**2 - jnp.log(_scale) - 0.5 * jnp.log(2 * jnp.pi), axis=-1)",
        ],
    )
    out += _method(
        "prior_sample(self, batch, seed=0, dtype=None)",
        "Draws loc + scale ξ, ξ ~ N(0, I), of shape (*batch, n); seed an int or a jax.random key.",
        [
            f"{INDENT}_key = runtime.as_key(seed)",
            f"{INDENT}_batch = (batch,) if isinstance(batch, int) else tuple(batch)",
            f"{INDENT}_dtype = dtype or jnp.result_type(float)",
        ]
        + unpack
        + [
            f"{INDENT}_xi = jax.random.normal(_key, _batch + ({size},), _dtype)",
            f"{INDENT}return {loc_arr} + {scale_arr} * _xi",
        ],
    )
    return out


def _kernel_methods(model, names: _Names) -> List[str]:
    kernel = kernel_expressions(model)
    if kernel is None:
        return []
    mean, spread, x0_symbols, diagonal, frozen = kernel
    printer_names = dict(names.states)
    printer_names.update(names.params)
    printer_names[model.time] = "_te" if model.elementwise else "t"
    x0_names = {}
    for i, s in enumerate(x0_symbols):
        x0_names[s] = f"_x0_{i}"
    printer_names.update(x0_names)
    printer = ArrayExprPrinter("jnp", printer_names, list(x0_symbols) + [model.time])
    if not x0_symbols:
        return []
    exprs = list(mean) + list(spread)
    body = []  # x0 and t first: a parameter may be named x0
    if model.elementwise:
        body.append(f"{INDENT}_x0_0 = x0")
    else:
        for i, s in enumerate(x0_symbols):
            body.append(f"{INDENT}_x0_{i} = x0[..., {i}]")
    body.append(f"{INDENT}t = jnp.asarray(t, dtype=x0.dtype)")
    if model.elementwise:
        body.append(f"{INDENT}_te = runtime.elementwise_time(t)")
    if frozen:
        fields = ", ".join(f"{name!r}: self.{names.table.param(name)}" for name in frozen)
        body.append(f"{INDENT}runtime.check_kernel_parameters({{{fields}}}, {frozen!r})")
    for p in model.parameters:
        if any(p.symbol in e.free_symbols for e in exprs):
            body.append(f"{INDENT}{names.params[p.symbol]} = self.{names.params[p.symbol]}")
    temps, reduced = sympy.cse(exprs, symbols=sympy.numbered_symbols("_k"), order="canonical")
    for name, expr in temps:
        body.append(INDENT + printer.assign(name.name, expr))
    codes = []
    varying = set(x0_symbols)
    for name, expr in temps:
        if expr.free_symbols & varying:
            varying.add(name)
    for e in reduced:
        code = printer.doprint(e)
        codes.append(code if e.free_symbols & varying else f"jnp.zeros_like(_x0_0) + {code}")
    n = len(mean)
    if model.elementwise:
        mean_code, spread_code = codes[0], codes[1]
    else:
        mean_code = _stack(codes[:n], -1)
        if diagonal:
            spread_code = _stack(codes[n:], -1)
        else:
            rows = [_stack(codes[n + i * n:n + (i + 1) * n], -1) for i in range(n)]
            spread_code = _stack(rows, -2)
    what = "(mean, std), each shaped like x0" if diagonal else "(mean (..., n), cov (..., n, n))"
    out = [f"    has_kernel = True", f"    kernel_is_diagonal = {diagonal}", ""]
    out += _method(
        "perturbation_kernel(self, x0, t)",
        f"p(x_t | x_0) = N(mean, ·) from Model.marginal(): {what}.",
        body + [f"{INDENT}return {mean_code}, {spread_code}"],
    )
    return out


# ---------------------------------------------------------------------------- the class
def _field_lines(model, names: _Names) -> List[str]:
    values = numeric_params(model)
    lines = []
    for p in model.parameters:
        name = names.table.param(p.name)
        if p.integer:
            default = values.get(p.name)
            lines.append(f"    {name}: int = eqx.field(static=True, default={default!r})")
        else:
            default = values.get(p.name)
            lines.append(f"    {name}: float = {default!r}")
    for _, name in names.table.nets:
        lines.append(f"    {name}: object = None")
    return lines


def _header(model, names: _Names) -> List[str]:
    lines = [f"# Generated by sdelang (jax backend) from model {names.table.class_name}. Do not edit.", "#"]
    time = model.time.name
    for i, s in enumerate(model.states):
        terms = [f"({brief(model.drift_matrix[i, 0])}) d{time}"]
        for j, w in enumerate(model.brownians):
            g = model.diffusion_matrix[i, j]
            if g != 0:
                terms.append(f"({brief(g)}) d{w.name}")
        lines.append("#   " + comment(f"d{s.name} = " + " + ".join(terms)))
    lines.append("#   " + comment(f"calculus: {model.calculus}; {model.time.name} in "
                                  f"[{brief(model.t0)}, {brief(model.t1)}]"))
    if model.elementwise:
        lines.append("#   " + comment(f"elementwise over {model.states[0].name}[{brief(model.dimension)}]"))
    return lines


def _time_bound(model, names: _Names, expr, label: str) -> List[str]:
    lines, code = _scalar_code(model, names, sympy.sympify(expr))
    return ["    @property"] + _method(f"{label}(self)", f"The model's {'start' if label == 't0' else 'end'} time.",
                                      lines + [f"{INDENT}return {code}"])


def emit_source(model) -> str:
    """The generated Python source of ``model`` (deterministic: same model, same bytes)."""
    names = _Names(model)
    table = names.table
    cls = table.class_name
    diagonal = (not model.is_ode) and (model.elementwise or model.noise_type == "diagonal")
    if not model.is_ode and not model.elementwise and model.noise_type == "additive":
        G = model.diffusion_matrix
        n, m = G.shape
        diagonal = n == m and all(G[i, j] == 0 for i in range(n) for j in range(m) if i != j)
    lines = _header(model, names)
    lines += [
        "",
        "import equinox as eqx",
        "import jax",
        "import jax.numpy as jnp",
        "import lineax as lx",
        "",
        "from sdelang_jax import runtime",
        "",
        "",
        f"class {cls}(runtime.CompiledModel):",
        f'    """The {cls} model (see the header). Parameters and networks are fields."""',
        "",
    ]
    fields = _field_lines(model, names)
    lines += fields + ([""] if fields else [])
    lines += [
        f"    model_name = {model.name!r}",
        f"    state_names = {tuple(s.name for s in model.states)!r}",
        f"    param_names = {tuple(local for _, local in table.params)!r}",
        f"    net_names = {tuple(local for _, local in table.nets)!r}",
        f"    param_fields = {dict(table.params)!r}",
        f"    net_fields = {dict(table.nets)!r}",
        f"    n_states = {None if model.elementwise else model.n_states!r}",
        f"    n_brownians = {model.n_brownians!r}",
        f"    is_sde = {not model.is_ode!r}",
        f"    elementwise = {model.elementwise!r}",
        f"    calculus = {model.calculus!r}",
        f"    noise_type = {model.noise_type!r}",
        f"    diagonal_noise = {diagonal!r}",
        f"    sdelang_spec = {spec_text(model)!r}",
        "",
    ]
    required = [table.param(p.name) for p in model.parameters if p.value is None]
    if required:
        lines += _method(
            "__check_init__(self)",
            "Parameters without a default value must be given.",
            [f"{INDENT}for name in {tuple(required)!r}:",
             f"{INDENT}    if getattr(self, name) is None:",
             f"{INDENT}        raise TypeError({cls + ': parameter '!r} + repr(name) + ' has no default; pass it')"],
        )
    lines += _time_bound(model, names, model.t0, "t0")
    lines += _time_bound(model, names, model.t1, "t1")
    if model.elementwise:
        lines += ["    @property"]
        dim_lines, dim_code = _scalar_code(model, names, sympy.sympify(model.dimension))
        lines += _method("dimension(self)", "The size d of the elementwise state x[d].",
                         dim_lines + [f"{INDENT}return int({dim_code})"])
    lines += _drift_method(model, names)
    if model.is_ode:
        lines += _ode_diffusion_method(model)
    else:
        lines += _diffusion_methods(model, names, diagonal)
    lines += _step_method(model, names, diagonal)
    lines += _prior_methods(model, names)
    lines += _kernel_methods(model, names)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"
