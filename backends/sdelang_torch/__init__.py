"""sdelang's torch backend: generated ``nn.Module`` classes for torchsde / torchdiffeq.

``backend.emit(model)`` returns the generated source, ``backend.compile(model, score=net)`` an
instance (``model.compile("torch", ...)`` goes through the registry to it). Names are imported on
first use (PEP 562), so ``sdelang_torch.backend.emit`` never loads torch.
"""
from __future__ import annotations

from sdelang.lazy_exports import lazy_exports

# Eager (it imports no framework): the attribute ``backend`` is then the backend object, not the
# submodule of that name.
from .backend import TorchBackend, backend

#: Exported name -> the submodule that defines it.
_EXPORTS = {
    "ScoreMLP": ".nets", "UNet": ".unet",
    # the score layer, written once in sdelang.score
    "SampleResult": "sdelang.score", "sample": "sdelang.score", "sample_em": "sdelang.score",
    "sample_ode": "sdelang.score", "sample_pc": "sdelang.score", "ScoreTrainer": "sdelang.score",
    "dsm_loss": "sdelang.score", "ssm_loss": "sdelang.score", "log_prob": "sdelang.score",
    # this backend's containers for it
    "ScoreModel": ".score_model", "KernelPreconditionedScore": ".preconditioning", "EMA": ".training_state",
}

__all__ = sorted(["TorchBackend", "backend", *_EXPORTS])
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
