"""The symbolic Model and its parts."""
from .model import Model
from .parts import Assertion, Density, Distribution, Interval, Net, Param
from .symbols import NetOutput, SymbolTuple, net_output, net_outputs

__all__ = [
    "Assertion", "Density", "Distribution", "Interval", "Model", "Net", "Param",
    "NetOutput", "SymbolTuple", "net_output", "net_outputs",
]
