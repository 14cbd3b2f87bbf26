"""Definite time integrals ∫_lo^hi h(τ) dτ of the kind affine marginals produce.

Each additive term is split as c · h(τ) · exp(g(τ)) and integrated by the first rule that applies:
  * h / g' free of τ:                ∫ h e^g dτ = (h/g') e^g            (VP, sub-VP, VE kernels)
  * g' constant, h polynomial in τ:  ∫ h e^g dτ = e^g Σ_k (-1)^k h^(k) / g'^(k+1)   (constant A)
  * no exponential:                   sympy.integrate (polynomials in τ)
  * otherwise                         sympy.integrate(..., conds="none"), left as an unevaluated
                                      Integral when SymPy cannot do it (still exact mathematics).
Powers a^g(τ) are rewritten as exp(g log a) first.
"""
from __future__ import annotations

import sympy


def _exp_form(expr: sympy.Expr, tau: sympy.Symbol) -> sympy.Expr:
    return expr.replace(
        lambda e: e.is_Pow and e.exp.has(tau) and e.base != sympy.E,
        lambda e: sympy.exp(e.exp * sympy.log(e.base)),
    )


def _split(term: sympy.Expr, tau: sympy.Symbol):
    """term = h · exp(g) with every τ-dependent exponential collected into g."""
    h, g = sympy.S.One, sympy.S.Zero
    for factor in sympy.Mul.make_args(term):
        if isinstance(factor, sympy.exp) and factor.has(tau):
            g += factor.args[0]
        elif factor.is_Pow and isinstance(factor.base, sympy.exp) and factor.has(tau) and not factor.exp.has(tau):
            g += factor.base.args[0] * factor.exp
        else:
            h *= factor
    return h, g


def _antiderivative(h: sympy.Expr, g: sympy.Expr, tau: sympy.Symbol):
    """An antiderivative of h(τ) exp(g(τ)) in τ, or None."""
    if g == 0:
        if h.is_polynomial(tau):
            return sympy.integrate(h, tau)
        result = sympy.integrate(h, tau, conds="none")
        return None if result.has(sympy.Integral) else result
    dg = sympy.diff(g, tau)
    ratio = sympy.cancel(h / dg)
    if not ratio.has(tau):
        return ratio * sympy.exp(g)
    if not dg.has(tau) and h.is_polynomial(tau):
        series, k, derivative = sympy.S.Zero, 0, h
        while derivative != 0:
            series += (-1) ** k * derivative / dg ** (k + 1)
            derivative = sympy.diff(derivative, tau)
            k += 1
        return sympy.exp(g) * series
    if h.is_polynomial(tau) and g.is_polynomial(tau) and sympy.degree(g, tau) > 1:
        return None  # polynomial x Gaussian-like exponential: erf terms, left as an Integral
    result = sympy.integrate(h * sympy.exp(g), tau, conds="none")
    return None if result.has(sympy.Integral) else result


def _groups(expr: sympy.Expr, tau: sympy.Symbol):
    """{g(τ): h(τ)} with expr = Σ h · exp(g), g collecting the τ-dependent exponents."""
    groups = {}
    for term in sympy.Add.make_args(expr):
        h, g = _split(sympy.powsimp(term, combine="exp"), tau)
        g = sympy.expand(g)
        g_tau = sympy.Add(*[a for a in sympy.Add.make_args(g) if a.has(tau)])
        h = h * sympy.exp(g - g_tau)
        groups[g_tau] = groups.get(g_tau, sympy.S.Zero) + h
    return groups


def definite_integral(expr: sympy.Expr, tau: sympy.Symbol, lo: sympy.Expr, hi: sympy.Expr) -> sympy.Expr:
    """∫_lo^hi expr dτ, grouped by exponential factor (see the module docstring)."""
    expr = sympy.expand(sympy.powsimp(_exp_form(sympy.sympify(expr), tau), combine="exp"))
    total, leftover = sympy.S.Zero, sympy.S.Zero
    for g, h in _groups(expr, tau).items():
        term = h * sympy.exp(g)
        if not term.has(tau):
            total += term * (hi - lo)
            continue
        F = _antiderivative(h, g, tau)
        if F is None:
            leftover += term
        else:
            total += F.subs(tau, hi) - F.subs(tau, lo)
    if leftover != 0:
        total += sympy.Integral(leftover, (tau, lo, hi))
    return total
