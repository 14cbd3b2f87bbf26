"""sdelang's JAX backend: models become ``equinox.Module`` classes with diffrax terms.

    import sdelang
    ou = sdelang.load("examples/ou.sde").compile("jax")
    xs = ou.simulate(x0, ts, dt=1e-2, seed=0)          # (len(ts), batch, n)
    sol = diffrax.diffeqsolve(ou.terms(bm), diffrax.Euler(), ...)
"""
from .backend import JaxBackend, backend
from .loader import load_class
from .nets import ScoreMLP
from .runtime import CompiledModel, MissingNetError

__all__ = ["CompiledModel", "JaxBackend", "MissingNetError", "ScoreMLP", "backend", "load_class"]

# Score-based generative modelling (issue 7): losses, trainer, samplers, facade.
from .score_model import KernelPreconditionedScore, ScoreModel
from .score_sampling import SampleResult, sample, sample_em, sample_ode, sample_pc
from .score_training import EMA, Adam, ScoreTrainer, dsm_loss, ssm_loss

__all__ += ["Adam", "EMA", "KernelPreconditionedScore", "SampleResult", "ScoreModel", "ScoreTrainer",
            "dsm_loss", "sample", "sample_em", "sample_ode", "sample_pc", "ssm_loss"]
