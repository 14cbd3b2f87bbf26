"""sdelang's torch backend: generated ``nn.Module`` classes for torchsde / torchdiffeq.

``backend.emit(model)`` returns the generated source, ``backend.compile(model, score=net)`` an
instance (``model.compile("torch", ...)`` goes through the registry to it).
"""
from .backend import TorchBackend, backend
from .nets import ScoreMLP

__all__ = ["ScoreMLP", "TorchBackend", "backend"]
