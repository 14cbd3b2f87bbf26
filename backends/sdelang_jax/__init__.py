"""sdelang's JAX backend: models become ``equinox.Module`` classes with diffrax terms.

    import sdelang
    ou = sdelang.load("examples/ou.sde").compile("jax")
    xs = ou.simulate(x0, ts, dt=1e-2, seed=0)          # (len(ts), batch, n)
    sol = diffrax.diffeqsolve(ou.terms(bm), diffrax.Euler(), ...)

Names are imported on first use (PEP 562), so ``sdelang_jax.backend.emit`` never loads jax.
"""
from __future__ import annotations

from sdelang.lazy_exports import lazy_exports

# Eager (it imports no framework): the attribute ``backend`` is then the backend object, not the
# submodule of that name.
from .backend import JaxBackend, backend

#: Exported name -> the submodule that defines it.
_EXPORTS = {
    "load_class": ".loader",
    "ScoreMLP": ".nets", "UNet": ".unet",
    "CompiledModel": ".runtime", "MissingNetError": ".runtime",
    # the score layer, written once in sdelang.score
    "SampleResult": "sdelang.score", "sample": "sdelang.score", "sample_em": "sdelang.score",
    "sample_ode": "sdelang.score", "sample_pc": "sdelang.score", "ScoreTrainer": "sdelang.score",
    "dsm_loss": "sdelang.score", "ssm_loss": "sdelang.score", "log_prob": "sdelang.score",
    # this backend's containers for it
    "ScoreModel": ".score_model", "KernelPreconditionedScore": ".preconditioning", "EMA": ".training_state",
    "Adam": ".training_state",
}

__all__ = sorted(["JaxBackend", "backend", *_EXPORTS])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
