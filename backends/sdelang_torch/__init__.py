"""sdelang's torch backend: generated ``nn.Module`` classes for torchsde / torchdiffeq.

``backend.emit(model)`` returns the generated source, ``backend.compile(model, score=net)`` an
instance (``model.compile("torch", ...)`` goes through the registry to it).
"""
from .backend import TorchBackend, backend
from .nets import ScoreMLP

__all__ = ["ScoreMLP", "TorchBackend", "backend"]
from .score_training import EMA, ScoreTrainer, dsm_loss, ssm_loss  # noqa: E402  (issue 7: score models)
from .score_sampling import SampleResult, sample, sample_em, sample_ode, sample_pc  # noqa: E402
from .score_model import KernelPreconditionedScore, ScoreModel  # noqa: E402

__all__ += ["EMA", "KernelPreconditionedScore", "SampleResult", "ScoreModel", "ScoreTrainer", "dsm_loss",
            "sample", "sample_em", "sample_ode", "sample_pc", "ssm_loss"]
