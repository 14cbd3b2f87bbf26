"""sdelang's JAX backend: models become ``equinox.Module`` classes with diffrax terms.

    import sdelang
    ou = sdelang.load("examples/ou.sde").compile("jax")
    xs = ou.simulate(x0, ts, dt=1e-2, seed=0)          # (len(ts), batch, n)
    sol = diffrax.diffeqsolve(ou.terms(bm), diffrax.Euler(), ...)

Names are imported on first use (PEP 562), so ``sdelang_jax.backend.emit`` never loads jax.
"""
from __future__ import annotations

import importlib

# Eager (it imports no framework): the attribute ``backend`` is then the backend object, not the
# submodule of that name.
from .backend import JaxBackend, backend

#: Exported name -> the submodule that defines it.
_EXPORTS = {
    "load_class": "loader",
    "ScoreMLP": "nets",
    "CompiledModel": "runtime", "MissingNetError": "runtime",
    "KernelPreconditionedScore": "score_model", "ScoreModel": "score_model",
    "SampleResult": "score_sampling", "sample": "score_sampling", "sample_em": "score_sampling",
    "sample_ode": "score_sampling", "sample_pc": "score_sampling",
    "Adam": "score_training", "EMA": "score_training", "ScoreTrainer": "score_training",
    "dsm_loss": "score_training", "ssm_loss": "score_training",
}

__all__ = sorted(["JaxBackend", "backend", *_EXPORTS])


def __getattr__(name: str):
    submodule = _EXPORTS.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{submodule}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
