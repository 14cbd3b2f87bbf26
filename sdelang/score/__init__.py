"""The score-based runtime, written once over a backend's array operations (``module.ops``):
samplers, losses, the trainer loop and checkpoint format, the likelihood, and the ``ScoreModel``
facade. Nothing here imports torch or jax; ``sdelang_torch`` and ``sdelang_jax`` supply the ops."""
from .defaults import T_MIN
from .langevin import Corrector
from .likelihood import log_prob
from .losses import DSM_WEIGHTINGS, LOSSES, SSM_WEIGHTINGS, dsm_loss, ssm_loss
from .protocol import ArrayOps, CompiledSDE, RandomStream
from .result import SampleResult
from .samplers import SAMPLERS, sample, sample_em, sample_ode, sample_pc
from .score_model import ScoreModel
from .trainer import ScoreTrainer

__all__ = ["ArrayOps", "CompiledSDE", "Corrector", "DSM_WEIGHTINGS", "LOSSES", "RandomStream", "SAMPLERS",
           "SSM_WEIGHTINGS", "SampleResult", "ScoreModel", "ScoreTrainer", "T_MIN", "dsm_loss", "log_prob",
           "sample", "sample_em", "sample_ode", "sample_pc", "ssm_loss"]
