"""Both backends implement the score layer's protocols (sdelang/score/protocol.py) with the same
names, and the score layer itself imports no framework."""
from __future__ import annotations

import subprocess
import sys
import typing

import pytest

import sdelang
from sdelang.score import ArrayOps, CompiledSDE

pytest.importorskip("torch")
pytest.importorskip("jax")

SDE_EXAMPLES = ["examples/vp.sde", "examples/ve.sde", "examples/ou.sde", "examples/cld.sde", "examples/heston.sde",
                "examples/langevin_double_well.sde"]


def members(protocol) -> list:
    return sorted(typing._get_protocol_attrs(protocol))


def backend_ops(name: str):
    if name == "torch":
        from sdelang_torch.array_ops import TORCH_OPS

        return TORCH_OPS
    from sdelang_jax.array_ops import JAX_OPS

    return JAX_OPS


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_the_backend_ops_implement_every_member_of_the_protocol(backend):
    ops = backend_ops(backend)
    assert isinstance(ops, ArrayOps)
    assert [name for name in members(ArrayOps) if not hasattr(ops, name)] == []
    assert ops.name == backend


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("spec", SDE_EXAMPLES)
def test_compiled_sde_modules_offer_the_protocol_with_the_same_names(backend, spec):
    module = sdelang.load(spec).compile(backend)
    assert isinstance(module, CompiledSDE)
    assert [name for name in members(CompiledSDE) if not hasattr(module, name)] == []
    assert module.ops is backend_ops(backend)
    reverse = module.reverse()
    assert isinstance(reverse, CompiledSDE) and reverse.ops is module.ops


def test_a_module_missing_a_protocol_member_is_not_a_compiled_sde():
    class Partial:
        ops = None

        def drift_fn(self, t, y):
            return y

    assert not isinstance(Partial(), CompiledSDE)


def test_the_score_layer_imports_no_framework():
    code = ("import sys, sdelang.score, sdelang.score.samplers, sdelang.score.trainer\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'jax', 'jaxlib', 'equinox', 'diffrax', 'torchdiffeq', 'torchsde'))\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
