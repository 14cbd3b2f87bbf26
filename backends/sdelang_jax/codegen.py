"""Model → JAX source: one ``equinox.Module`` class per model (deterministic: same model, same bytes).

The class subclasses :class:`sdelang_jax.runtime.CompiledModel` and holds the parameters as pytree
fields (``: int`` parameters static) and the networks as fields; its model-specific methods are
those of ``codegen_methods``. The module's text (header, class, attributes, embedded spec,
wrapping) is written by ``sdelang.emit.source``.
"""
from __future__ import annotations

from typing import List


from sdelang.emit.block import scalar_property
from sdelang.emit.embedded_spec import spec_text
from sdelang.emit.lower import numeric_params
from sdelang.emit.names import NameTable, name_table
from sdelang.emit.source import INDENT, attribute_lines, header_lines, method, model_attributes, module_source
from sdelang.model.symbols import SCORE_NET

from .codegen_methods import diffusion_methods, drift_method, kernel_methods, prior_methods, step_method
from .codegen_target import JAX

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

IMPORTS = (("import equinox as eqx", "import jax", "import jax.numpy as jnp", "import lineax as lx"),
           ("from sdelang_jax import runtime",))


def jax_name_table(model) -> NameTable:
    """The shared name table; the class also carries the learned ``score`` (its reverse-time and
    probability-flow modules and ``dsm_loss`` call it) unless an identifier already names it."""
    return name_table(model, reserved=CLASS_MEMBERS, extra_nets=(SCORE_NET,))


def diagonal_noise(model) -> bool:
    """Whether the noise enters per state (ΔW shaped like y): elementwise or diagonal G."""
    if model.is_ode:
        return False
    if model.elementwise or model.noise_type == "diagonal":
        return True
    if model.noise_type != "additive":
        return False
    G = model.diffusion_matrix
    n, m = G.shape
    return n == m and all(G[i, j] == 0 for i in range(n) for j in range(m) if i != j)


def _field_lines(model, table: NameTable) -> List[str]:
    values = numeric_params(model)
    lines = []
    for p in model.parameters:
        name = table.param(p.name)
        if p.integer:
            lines.append(f"    {name}: int = eqx.field(static=True, default={values.get(p.name)!r})")
        else:
            lines.append(f"    {name}: float = {values.get(p.name)!r}")
    lines += [f"    {name}: object = None" for _, name in table.nets]
    return lines + ([""] if lines else [])


def _class_attributes(model, table: NameTable) -> List[str]:
    return attribute_lines([
        ("model_name", model.name),
        ("param_names", tuple(local for _, local in table.params)),
        ("net_names", tuple(local for _, local in table.nets)),
        ("param_fields", dict(table.params)),
        ("net_fields", dict(table.nets)),
        ("noise_type", model.noise_type),
        ("diagonal_noise", diagonal_noise(model)),
    ] + model_attributes(model, spec_text(model))) + [""]


def _check_init(model, table: NameTable, cls: str) -> List[str]:
    required = [table.param(p.name) for p in model.parameters if p.value is None]
    if not required:
        return []
    return method("__check_init__(self)", "Parameters without a default value must be given.", [
        f"{INDENT}for name in {tuple(required)!r}:",
        f"{INDENT}    if getattr(self, name) is None:",
        f"{INDENT}        raise TypeError({cls + ': parameter '!r} + repr(name) + ' has no default; pass it')"])


def emit_source(model) -> str:
    """The generated Python source of ``model`` (deterministic: same model, same bytes)."""
    table = jax_name_table(model)
    cls = table.class_name
    diagonal = diagonal_noise(model)
    body = _field_lines(model, table) + _class_attributes(model, table) + _check_init(model, table, cls)
    body += scalar_property(model, table, JAX, "t0", model.t0, "The model's start time.")
    body += scalar_property(model, table, JAX, "t1", model.t1, "The model's end time.")
    if model.elementwise:
        body += scalar_property(model, table, JAX, "dimension", model.dimension,
                                 "The size d of the elementwise state x[d].", wrap="int")
    body += drift_method(model, table) + diffusion_methods(model, table, diagonal)
    body += step_method(model, table, diagonal)
    body += prior_methods(model, table) + kernel_methods(model, table)
    return module_source(header_lines(model, cls, "jax"), IMPORTS, cls, "runtime.CompiledModel",
                         f"The {cls} model (see the header). Parameters and networks are fields.", body)
