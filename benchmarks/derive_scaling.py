"""Symbolic derivations and code generation on an elementwise model do not depend on the state's size d.

VP diffusion (Song et al. 2021), dx = -½ β(t) x dt + sqrt(β(t)) dW on x in R^d, with d = 2 and
d = 3072 (a 32 x 32 x 3 image). Times kfp / reverse / probability_flow / marginal and the emitted
torch and JAX source (median of repeats, fresh model each time so SymPy's cache is not what is
measured), prints a table.

    python benchmarks/derive_scaling.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import sympy
from sympy import Matrix, Symbol, sqrt

import sdelang
from sdelang.emit import BackendError, get_backend
from sdelang.model import Distribution, Model, Param


def vp_model(d: int) -> Model:
    x, t = Symbol("x"), Symbol("t")
    bmin, bmax, dim = Symbol("beta_min"), Symbol("beta_max"), Symbol("d")
    beta = bmin + t * (bmax - bmin)
    return Model(
        "VP", (x,), Matrix([-beta * x / 2]), Matrix([[sqrt(beta)]]), (Symbol("W"),),
        parameters=(Param(dim, sympy.Integer(d), integer=True), Param(bmin, sympy.Float(0.1)),
                    Param(bmax, sympy.Float(20.0))),
        dimension=sympy.Integer(d), prior=(("x", Distribution("normal", 0, 1)),),
    )


DERIVATIONS = {
    "kfp": lambda m: m.kfp(),
    "reverse": lambda m: m.reverse(),
    "probability_flow": lambda m: m.probability_flow(),
    "marginal": lambda m: m.marginal(),
}
for _backend in ("torch", "jax"):
    try:
        get_backend(_backend)
    except BackendError:
        continue
    DERIVATIONS[f"emit {_backend}"] = lambda m, b=_backend: sdelang.emit(m, b)


def median_seconds(d: int, derive, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        sympy.core.cache.clear_cache()
        model = vp_model(d)
        start = time.perf_counter()
        derive(model)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("VP, elementwise x[d] with d a concrete Integer (no expansion happens)")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, SymPy {sympy.__version__}")
    print(f"{'derivation':<18}{'d = 2 (ms)':>12}{'d = 3072 (ms)':>15}{'ratio':>8}")
    for name, derive in DERIVATIONS.items():
        small = median_seconds(2, derive, args.repeats)
        large = median_seconds(3072, derive, args.repeats)
        print(f"{name:<18}{small * 1e3:>12.1f}{large * 1e3:>15.1f}{large / small:>8.2f}")


if __name__ == "__main__":
    main()
