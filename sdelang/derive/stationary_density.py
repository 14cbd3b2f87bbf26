"""The stationary law of a diffusion, derived in closed form where it exists (Gardiner §5.3, §6.2;
Risken §6.1).

A stationary density with zero probability current J_i = f_i p - ½ Σ_j ∂_j(D_ij p) = 0 (detailed
balance; every stationary law of a 1-D diffusion is of this kind) satisfies

    ∇ log p = D⁻¹ (2f - ∇·D)                                  (Itô drift f, D = G Gᵀ)

so it exists iff the right-hand side A is a gradient (∂_i A_j = ∂_j A_i, the potential conditions)
and then p = exp(φ) with ∇φ = A. In one dimension this is p ∝ exp(∫ 2f/g² dx) / g². A
Stratonovich model is converted to Itô first, so dx = -x dt + √(1+x²) dW has the law
(1+x²)^-2 in Itô's calculus and (1+x²)^-3/2 in Stratonovich's. For an elementwise model the law
is the product of the 1-D laws of the components; the returned expression is the one-component
factor.

The result must also be a probability density: it is checked (at the parameters' values) to be
positive somewhere and integrable (see :mod:`.density_defect`); GBM's x^(2μ/σ²-2) is not, so GBM
has no stationary law.
"""
from __future__ import annotations

import sympy

from ..errors import DerivationError
from ..model.symbols import NetOutput
from .calculus import to_ito
from .density_defect import density_defect
from .operators import diffusion_tensor, matrix_divergence


def _support_point(states, D, values):
    """A point where every D_ii > 0 (inside the state space), at the parameters' values."""
    for value in (0.3, 0.7, 0.1, 0.9, 1.5, -0.5, 2.5, -1.5):
        point = {x: sympy.Float(value + 0.01 * k) for k, x in enumerate(states)}
        entries = [sympy.N(D[i, i].xreplace(values).xreplace(point)) for i in range(len(states))]
        if all(e.is_real and e > 0 for e in entries):
            return point
    return None


def _real_logs(phi: sympy.Expr, point, values) -> sympy.Expr:
    """∫ du/u = log|u|: each log(u) whose argument is negative on the state space becomes log(-u)
    (SymPy's log(x - 1) for Jacobi's x in (0, 1) is log(1 - x)); arguments are factored."""
    for term in phi.atoms(sympy.log):
        argument = sympy.factor(sympy.cancel(term.args[0]))
        if point is not None:
            value = sympy.N(argument.xreplace(values).xreplace(point))
            if value.is_real and value < 0:
                argument = sympy.factor(-argument)
        phi = phi.xreplace({term: sympy.log(argument)})
    return phi


def _as_powers(phi: sympy.Expr) -> sympy.Expr:
    """exp(Σ c_k log u_k + rest) as Π u_k^{c_k} · exp(rest) (Gamma, Beta and power laws)."""
    factors, rest = [], sympy.S.Zero
    for term in sympy.Add.make_args(sympy.expand(sympy.expand_log(phi, force=True))):
        logs = [f for f in sympy.Mul.make_args(term) if isinstance(f, sympy.log)]
        if len(logs) == 1:
            factors.append((logs[0].args[0], sympy.cancel(term / logs[0])))
        else:
            rest += term
    grouped: dict = {}
    for base, power in factors:
        grouped[base] = grouped.get(base, sympy.S.Zero) + power
    p = sympy.exp(sympy.factor(rest)) if rest != 0 else sympy.S.One
    for base, power in grouped.items():
        p *= base ** sympy.factor(power)
    return p


def _potential(A, states) -> sympy.Expr:
    """φ with ∇φ = A (A curl-free): integrate A_1 in x_1, then the rest of A_2 in x_2, ..."""
    phi = sympy.S.Zero
    for i, x in enumerate(states):
        rest = sympy.simplify(A[i] - sympy.diff(phi, x))
        if rest.free_symbols & set(states[:i]):
            raise DerivationError(f"the potential of D⁻¹(2f - ∇·D) could not be assembled in {x}")
        term = sympy.integrate(rest, x)
        if term.has(sympy.Integral):
            raise DerivationError(f"∫ {sympy.sstr(rest)} d{x} has no closed form")
        phi += term
    return phi


def stationary_density(model) -> sympy.Expr:
    """An unnormalised stationary density p of ``model`` (states and parameters symbolic), or
    DerivationError naming the condition that fails."""
    if model.is_ode:
        raise DerivationError(f"{model.name} has no noise: a stationary density of an ODE is not unique")
    m = to_ito(model)
    if any(e.has(NetOutput) for e in list(m.drift_matrix) + list(m.diffusion_matrix)):
        raise DerivationError(f"{model.name} calls a learned network: its stationary law has no closed form")
    public_to_assumed = model.assumption_symbols()
    assumed_to_public = {v: k for k, v in public_to_assumed.items()}
    states = [public_to_assumed[x] for x in m.states]
    f = m.drift.xreplace(public_to_assumed)
    D = diffusion_tensor(m.diffusion).xreplace(public_to_assumed)
    if any(e.has(public_to_assumed[m.time]) for e in list(f) + list(D)):
        raise DerivationError(f"{model.name} depends on time: it has no stationary law")
    n = len(states)
    if D.det() == 0:
        raise DerivationError(f"the diffusion tensor D = G Gᵀ of {model.name} is singular: the formula "
                              "∇ log p = D⁻¹(2f - ∇·D) needs every direction to be noisy")
    A = (D.inv() * (2 * f - matrix_divergence(D, states))).applyfunc(sympy.cancel)
    for i in range(n):
        for j in range(i + 1, n):
            curl = sympy.simplify(sympy.diff(A[j], states[i]) - sympy.diff(A[i], states[j]))
            if curl != 0:
                raise DerivationError(
                    f"{model.name} violates detailed balance: A = D⁻¹(2f - ∇·D) is not a gradient "
                    f"(∂A_{j}/∂{states[i]} - ∂A_{i}/∂{states[j]} = {sympy.sstr(curl.xreplace(assumed_to_public))} "
                    "≠ 0), so no stationary density follows in closed form")
    values = {public_to_assumed[p.symbol]: p.value for p in model.parameters if p.value is not None}
    inside = _support_point(states, D, values)
    phi = _real_logs(_potential(A, states), inside, values)
    p = _as_powers(phi).xreplace(assumed_to_public)
    support = sympy.Min(*[D[i, i] for i in range(n)]).xreplace(assumed_to_public) if n > 1 else \
        D[0, 0].xreplace(assumed_to_public)
    defect = density_defect(model, p, phi.xreplace(assumed_to_public), support=support)
    if defect is not None:
        raise DerivationError(f"{model.name} has no stationary law: exp(∫ D⁻¹(2f - ∇·D)) = {sympy.sstr(p)} "
                              f"is not a probability density ({defect})")
    return p
