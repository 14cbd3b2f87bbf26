"""Emitting backend code: the plug-in registry."""
from .registry import BackendError, available_backends, compile_model, emit, get_backend

__all__ = ["BackendError", "available_backends", "compile_model", "emit", "get_backend"]
