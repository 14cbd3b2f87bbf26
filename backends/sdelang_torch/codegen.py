"""Model -> Python source of one torch module class (deterministic: same model, same bytes).

The class subclasses ``runtime.CompiledSDE`` or ``runtime.CompiledODE`` (the shared, hand-written
machinery: parameters, networks, simulation loop, likelihood) and defines the model's mathematics
as generated methods (``codegen_sde``, ``codegen_ode``, ``codegen_kernel``). The module's text
(header, class, attributes, embedded spec, wrapping) is written by ``sdelang.emit.source``.
"""
from __future__ import annotations

from typing import List

import sympy

from sdelang.emit.block import scalar_property
from sdelang.emit.embedded_spec import spec_text
from sdelang.emit.lower import numeric_params
from sdelang.emit.names import NameTable, called_nets, name_table
from sdelang.emit.source import attribute_lines, header_lines, method, model_attributes, module_source
from sdelang.model.symbols import SCORE_NET

from .codegen_block import TORCH
from .codegen_kernel import kernel_methods
from .codegen_ode import ode_methods
from .codegen_sde import noise_shape_code, sde_methods, torchsde_noise_type

#: Attributes of the generated class and its base that a user identifier must not shadow.
CLASS_MEMBERS = frozenset({"f", "g", "f_and_g", "g_prod", "f_and_g_prod", "forward", "t0", "t1"})

IMPORTS = (("import math",), ("import torch",), ("from sdelang_torch import runtime",))


def torch_name_table(model) -> NameTable:
    """The shared name table; an SDE also carries the learned ``score`` its reverse-time and
    probability-flow modules call."""
    return name_table(model, reserved=CLASS_MEMBERS, extra_nets=() if model.is_ode else (SCORE_NET,))


def _own_nets(model) -> tuple:
    """Networks the model declares or calls (the name table may add the builtin ``score``)."""
    return tuple(n.name for n in model.nets) + tuple(called_nets(model))


def _class_attributes(model, table) -> List[str]:
    params = numeric_params(model)
    dim_param = None
    dim_value = None
    if model.elementwise:
        dim = sympy.sympify(model.dimension)
        if dim.is_Symbol and dim.name in params:
            dim_param = dim.name
        elif dim.is_Integer:
            dim_value = int(dim)
    own = _own_nets(model)
    attrs = [
        ("brownian_names", tuple(b.name for b in model.brownians)),
        ("net_names", own),
        ("extra_net_names", tuple(n for n in table.net_names if n not in own)),
        ("param_defaults", {name: params.get(name) for name, _ in table.params}),
        ("keyword_names", {**dict(table.params), **dict(table.nets)}),
        ("dimension_param", dim_param),
        ("dimension_value", dim_value),
    ] + model_attributes(model, spec_text(model))
    if not model.is_ode:
        attrs = [("noise_type", torchsde_noise_type(model)),
                 ("sde_type", "stratonovich" if model.calculus == "stratonovich" else "ito")] + attrs
    return attribute_lines(attrs)


def _constructor(table: NameTable) -> List[str]:
    defaults = ", ".join(f"{local}=None" for _, local in table.params + table.nets)
    params = ", ".join(f"{name!r}: {local}" for name, local in table.params)
    nets = ", ".join(f"{name!r}: {local}" for name, local in table.nets)
    return method(f"__init__(self, {defaults})" if defaults else "__init__(self)",
                  "Parameters default to the model's values (None = default); networks by name.",
                  [f"        super().__init__({{{params}}}, {{{nets}}})"])


def emit_source(model) -> str:
    """The generated module source for ``model``."""
    table = torch_name_table(model)
    cls = table.class_name
    body = _class_attributes(model, table) + [""] + _constructor(table)
    body += scalar_property(model, table, TORCH, "t0", model.t0, "The model's start time.", wrap="float")
    body += scalar_property(model, table, TORCH, "t1", model.t1, "The model's end time.", wrap="float")
    if model.is_ode:
        body += ode_methods(model, table)
    else:
        step_model = model.to_ito() if model.calculus == "stratonovich" else model
        body += sde_methods(model, table, step_model)
    body += method("_noise_shape(self, y)", "Shape of one step's Brownian increment.",
                   [f"        return {'None' if model.is_ode else noise_shape_code(model)}"])
    body += kernel_methods(model, table)
    return module_source(header_lines(model, cls, "torch"), IMPORTS, cls,
                         "runtime.CompiledODE" if model.is_ode else "runtime.CompiledSDE",
                         f"{'ODE' if model.is_ode else 'SDE'} module generated from the sdelang model {cls}.", body)
