"""The Kolmogorov forward (Fokker–Planck) equation of a model, in Itô form:

    ∂p/∂t = -Σ_i ∂_i (f_i p) + ½ Σ_{i,j} ∂_i ∂_j (D_ij p),   D = G Gᵀ.

``p = sympy.Function("p")`` applied to ``(*states, t)``. Stratonovich models are converted to Itô
first. For an elementwise model (``state x[d]``, p a density on R^d) the right-hand side is

    Σ_{i=1}^{d} [ -f'(x_i) p - f(x_i) ∂_i p + ½ (D''(x_i) p + 2 D'(x_i) ∂_i p + D(x_i) ∂_i² p) ]

written as ``sympy.Sum`` over an index ``i`` (``i_`` if taken) with ``Indexed`` components
``x[i]`` and the derivatives ∂p/∂x_i, ∂²p/∂x_i² as :class:`ComponentDerivative` (p depends on the
whole vector, so SymPy's ``Derivative(p(x, t), x[i])`` would become 0 under ``doit()``; these stay
what they are under ``doit()``, ``simplify()`` and a concrete d). d stays symbolic and the cost does
not depend on it.
"""
from __future__ import annotations

import sympy

from .calculus import to_ito
from .operators import component, diffusion_tensor

DENSITY = sympy.Function("p")


class ComponentDerivative(sympy.Function):
    """∂^k p / ∂x_i^k: ``ComponentDerivative(p(x, t), x[i], k)``, the derivative of a density of
    the whole vector x with respect to its component x_i (an ``Indexed`` symbol). It stays
    unevaluated: SymPy cannot differentiate p(x, t) with respect to x[i]."""

    nargs = 3

    @classmethod
    def eval(cls, density, component, order):
        return None

    @property
    def order(self) -> int:
        return int(self.args[2])

    def _sympystr(self, printer):
        density, component, order = self.args
        wrt = printer._print(component) if order == 1 else f"({printer._print(component)}, {order})"
        return f"Derivative({printer._print(density)}, {wrt})"

    def _latex(self, printer):
        density, component, order = self.args
        power = "" if order == 1 else f"^{{{order}}}"
        return (rf"\frac{{\partial{power} {printer._print(density)}}}"
                rf"{{\partial {printer._print(component)}{power}}}")


def kfp_rhs(model, p: sympy.Expr) -> sympy.Expr:
    """-Σ_i ∂_i (f_i p) + ½ Σ_ij ∂_i ∂_j (D_ij p) for an explicit expression or function p,
    expanded by the product rule so that the derivatives of p are taken once each:

        ½ Σ_ij D_ij ∂_i∂_j p + Σ_j (Σ_i ∂_i D_ij - f_j) ∂_j p + (½ Σ_ij ∂_i∂_j D_ij - Σ_i ∂_i f_i) p

    (D is symmetric; an n-state model with general noise costs O(n²) small derivatives)."""
    m = to_ito(model)
    xs, f, D = m.states, m.drift, diffusion_tensor(m.diffusion)
    n = len(xs)
    half = sympy.Rational(1, 2)
    dp = [sympy.diff(p, x) for x in xs]
    second, first, zeroth = [], [], []
    for j in range(n):
        coefficient = -f[j]
        for i in range(n):
            if D[i, j] == 0:
                continue
            coefficient += sympy.diff(D[i, j], xs[i])
            if i <= j:
                weight = half if i == j else sympy.S.One
                second.append(weight * D[i, j] * sympy.diff(dp[i], xs[j]))
            zeroth.append(half * sympy.diff(D[i, j], xs[i], xs[j]))
        first.append(coefficient * dp[j])
        zeroth.append(-sympy.diff(f[j], xs[j]))
    return sympy.Add(*second) + sympy.Add(*first) + sympy.Add(*zeroth) * p


def _elementwise_rhs(model, p: sympy.Expr) -> sympy.Expr:
    (x,) = model.states
    f, D = model.drift[0], diffusion_tensor(model.diffusion)[0, 0]
    index, _, to_component = component(model)
    xi = to_component[x]

    def at_component(coefficient: sympy.Expr) -> sympy.Expr:
        return coefficient.xreplace(to_component)

    dp = ComponentDerivative(p, xi, 1)
    d2p = ComponentDerivative(p, xi, 2)
    half = sympy.Rational(1, 2)
    term = (
        -at_component(sympy.diff(f, x)) * p
        - at_component(f) * dp
        + half * at_component(sympy.diff(D, x, 2)) * p
        + at_component(sympy.diff(D, x)) * dp
        + half * at_component(D) * d2p
    )
    return sympy.Sum(term, (index, 1, model.dimension))


def kfp(model) -> sympy.Eq:
    """``Eq(Derivative(p(*states, t), t), rhs)``: the forward equation of the model."""
    m = to_ito(model)
    p = DENSITY(*m.states, m.time)
    if m.elementwise:
        return sympy.Eq(sympy.Derivative(p, m.time), _elementwise_rhs(m, p), evaluate=False)
    return sympy.Eq(sympy.Derivative(p, m.time), kfp_rhs(m, p), evaluate=False)
