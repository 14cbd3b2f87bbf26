"""|z| and sign(z) of a real argument, as the language means them.

The model's public symbols carry no assumptions (users compare with symbols of their own), so
SymPy's ``Abs(x)`` would treat x as complex: d|x|/dx becomes ``re(x)·∂re(x)/∂x + ...`` and
``|exp(x)|`` becomes ``exp(re(x))``. States, time and parameters are real, so the language's
``abs`` and ``sign`` are these real-argument functions:

    d|z|/dz = sign(z),   d sign(z)/dz = 2 δ(z),   |e^z| = e^z,   |z|^(2k) = z^(2k),   |c z| = |c| |z|.
"""
from __future__ import annotations

import sympy


class _RealArgumentFunction(sympy.Function):
    """A real-valued function of one real argument, printed under its language name."""

    nargs = 1
    language_name = ""

    def _eval_is_real(self):
        return True

    def _sympystr(self, printer):
        return f"{self.language_name}({printer._print(self.args[0])})"


class RealAbs(_RealArgumentFunction):
    """|z| for real z (the language's ``abs``)."""

    language_name = "abs"

    @classmethod
    def eval(cls, z):
        if z.is_number:
            return sympy.Abs(z)
        if isinstance(z, (sympy.exp, RealAbs)) or z.is_nonnegative:
            return z
        if z.is_nonpositive:
            return -z
        if isinstance(z, sympy.Pow) and z.exp.is_Integer and z.exp.is_even:
            return z
        coeff, rest = z.as_coeff_Mul()
        if coeff.is_number and coeff != 1 and rest != 1:
            return sympy.Abs(coeff) * cls(rest)
        return None

    def fdiff(self, argindex=1):
        return RealSign(self.args[0])

    def _eval_power(self, exponent):
        if exponent.is_Integer and exponent.is_even:
            return self.args[0] ** exponent
        return None

    def _eval_is_nonnegative(self):
        return True

    def _latex(self, printer):
        return rf"\left|{printer._print(self.args[0])}\right|"


class RealSign(_RealArgumentFunction):
    """sign(z) ∈ {-1, 0, 1} for real z (the language's ``sign``)."""

    language_name = "sign"

    @classmethod
    def eval(cls, z):
        if z.is_number:
            return sympy.sign(z)
        if z.is_positive:
            return sympy.S.One
        if z.is_negative:
            return sympy.S.NegativeOne
        if isinstance(z, sympy.exp):
            return sympy.S.One
        return None

    def fdiff(self, argindex=1):
        return 2 * sympy.DiracDelta(self.args[0])

    def _latex(self, printer):
        return rf"\operatorname{{sign}}\left({printer._print(self.args[0])}\right)"
