"""Symbolic derivations: Model -> Model (reverse, probability flow, Itô ⇄ Stratonovich, Langevin)
and Model -> facts (KFP, generator, stationarity, marginals, divergence)."""
from .calculus import to_ito, to_stratonovich
from .divergence import divergence
from .flow import probability_flow
from .generator import Generator, generator
from .kfp import kfp, kfp_rhs
from .langevin import langevin
from .marginal import GaussianMarginal, affine_parts, marginal
from .operators import diffusion_tensor, gradient, matrix_divergence, stratonovich_correction
from .reverse import reverse
from .score import resolve_score
from .stationarity import StationarityResult, check_stationary, log_density_residual
from .stationary_density import stationary_density as _stationary_density
from ..model.methods import bind

bind(kfp=kfp, generator=generator, reverse=reverse, probability_flow=probability_flow, to_ito=to_ito,
     to_stratonovich=to_stratonovich, check_stationary=check_stationary, stationary_density=_stationary_density,
     marginal=marginal, divergence=divergence)

__all__ = [
    "GaussianMarginal", "Generator", "StationarityResult", "affine_parts", "check_stationary",
    "diffusion_tensor", "divergence", "generator", "gradient", "kfp", "kfp_rhs", "langevin",
    "log_density_residual", "marginal", "matrix_divergence", "probability_flow", "resolve_score",
    "reverse", "stratonovich_correction", "to_ito", "to_stratonovich",
]
