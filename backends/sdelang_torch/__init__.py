"""sdelang's torch backend: generated ``nn.Module`` classes for torchsde / torchdiffeq.

``backend.emit(model)`` returns the generated source, ``backend.compile(model, score=net)`` an
instance (``model.compile("torch", ...)`` goes through the registry to it). Names are imported on
first use (PEP 562), so ``sdelang_torch.backend.emit`` never loads torch.
"""
from __future__ import annotations

import importlib

# Eager (it imports no framework): the attribute ``backend`` is then the backend object, not the
# submodule of that name.
from .backend import TorchBackend, backend

#: Exported name -> the submodule that defines it.
_EXPORTS = {
    "ScoreMLP": "nets",
    "EMA": "score_training", "ScoreTrainer": "score_training", "dsm_loss": "score_training",
    "ssm_loss": "score_training",
    "SampleResult": "score_sampling", "sample": "score_sampling", "sample_em": "score_sampling",
    "sample_ode": "score_sampling", "sample_pc": "score_sampling",
    "KernelPreconditionedScore": "score_model", "ScoreModel": "score_model",
}

__all__ = sorted(["TorchBackend", "backend", *_EXPORTS])


def __getattr__(name: str):
    submodule = _EXPORTS.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{submodule}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
