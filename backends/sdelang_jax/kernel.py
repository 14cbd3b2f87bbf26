"""The perturbation kernel p(x_t | x_0) = N(mean, cov) of an affine SDE, as the JAX codegen wants it.

The kernel itself (read from ``Model.marginal()``, rewritten for floating point) is shared with the
torch backend: :func:`sdelang.emit.kernel.gaussian_kernel`.
"""
from __future__ import annotations

from sdelang.emit.kernel import gaussian_kernel


def kernel_expressions(model):
    """(mean entries, std entries (diagonal) or cov entries row-major (coupled), x0 symbols,
    diagonal?, frozen parameters) in terms of t, the parameters and the x0 symbols; None when
    there is no kernel."""
    kernel = gaussian_kernel(model)
    if kernel is None:
        return None
    spread = kernel.std if kernel.diagonal else kernel.cov
    return list(kernel.mean), list(spread), kernel.x0, kernel.diagonal, dict(kernel.frozen)
