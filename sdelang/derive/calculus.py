"""Itô ⇄ Stratonovich: the same process written in the other calculus.

    Itô drift = Stratonovich drift + ½ Σ_{j,k} G_kj ∂_k G_ij        (diffusion G unchanged)

The general formula is used for every noise class: for elementwise (diagonal) noise it is ½ g g',
and diagonal noise whose entries depend on other states (dX1 = X2 ∘ dW1, dX2 = X1 ∘ dW2) gets no
correction, as the formula says (a ½ J(g) g shortcut would be wrong there).
"""
from __future__ import annotations

from .operators import stratonovich_correction


def to_ito(model):
    """The model in Itô form (the model itself when it already is Itô)."""
    if model.calculus == "ito":
        return model
    correction = stratonovich_correction(model.diffusion, model.states)
    return model.replace(drift=model.drift + correction, calculus="ito")


def to_stratonovich(model):
    """The model in Stratonovich form (the model itself when it already is Stratonovich)."""
    if model.calculus == "stratonovich":
        return model
    correction = stratonovich_correction(model.diffusion, model.states)
    return model.replace(drift=model.drift - correction, calculus="stratonovich")
