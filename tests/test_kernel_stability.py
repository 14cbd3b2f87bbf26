"""Perturbation kernels stay accurate in float32 as t → 0 (sdelang.emit.kernel): sub-VP's variance
(1 - e^{-B})² and VP's 1 - e^{-B} are printed through expm1, not as differences of exponentials
that cancel (the expanded sub-VP form gives σ = 2.4e-4 instead of 1.0e-4 at t = 1e-3)."""
import math
import pathlib

import numpy as np
import pytest
import sympy

import sdelang
from sdelang.emit.kernel import numerically_stable

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"
BETA_MIN, BETA_MAX = 0.1, 20.0


def integrated_beta(t):
    return BETA_MIN * t + (BETA_MAX - BETA_MIN) * t ** 2 / 2


def exact_std(sde, t):
    """Song et al. (2021): VP σ² = 1 - e^{-B}, sub-VP σ² = (1 - e^{-B})², B = ∫_0^t β."""
    one_minus = -math.expm1(-integrated_beta(t))
    return math.sqrt(one_minus) if sde == "vp" else one_minus


def test_rewrite_keeps_the_value_and_removes_the_cancellation():
    t = sympy.Symbol("t")
    expanded = 1 - 2 * sympy.exp(-t) + sympy.exp(-2 * t)
    stable = numerically_stable(expanded)
    assert "expm1" in str(stable)
    for value in (1e-6, 0.3, 2.0):
        assert float(stable.subs(t, value).evalf(30)) == pytest.approx(float(expanded.subs(t, value).evalf(30)), rel=1e-12)
    exact = math.expm1(-1e-4) ** 2
    stable_f32 = sympy.lambdify(t, stable, modules=[{"expm1": np.expm1}, "numpy"])(np.float32(1e-4))
    expanded_f32 = sympy.lambdify(t, expanded, modules="numpy")(np.float32(1e-4))
    assert stable_f32 == pytest.approx(exact, rel=1e-5)
    assert abs(expanded_f32 - exact) > 0.1 * exact  # what the rewrite prevents


@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("sde", ["vp", "subvp"])
def test_float32_kernel_std_near_t0(backend, sde):
    pytest.importorskip(backend)
    module = sdelang.load(EXAMPLES / f"{sde}.sde").compile(backend)
    times = [1e-4, 1e-3, 0.5]
    for t in times:
        if backend == "torch":
            import torch

            x0 = torch.zeros(3, 2, dtype=torch.float32)
            _, std = module.perturbation_kernel(x0, torch.tensor(t, dtype=torch.float32))
            std = std.numpy()
        else:
            import jax.numpy as jnp

            _, std = module.perturbation_kernel(jnp.zeros((3, 2), dtype=jnp.float32), jnp.float32(t))
            std = np.asarray(std)
        assert std.dtype == np.float32
        np.testing.assert_allclose(std, exact_std(sde, t), rtol=1e-5)
