"""What generated torch modules import: the base classes and the small helpers they call."""
from sdelang.emit.kernel import check_kernel_parameters

from .compiled import CompiledODE, CompiledSDE, MissingNet, call_net
from .simulate import euler_maruyama
from .timing import as_time, net_time

__all__ = ["CompiledODE", "CompiledSDE", "MissingNet", "call_net", "check_kernel_parameters", "as_time", "euler_maruyama", "net_time"]
