"""Sigma schedules, samplers (pure functions) and guidance for rectified flow."""

from .guidance import guided_velocity
from .samplers import SAMPLERS, noise_like, sample_euler, sample_heun, start_latent
from .schedules import denoise_sigmas, ltx_sigmas, shifted_sigmas, token_shift

__all__ = [
    "SAMPLERS",
    "denoise_sigmas",
    "guided_velocity",
    "ltx_sigmas",
    "noise_like",
    "sample_euler",
    "sample_heun",
    "shifted_sigmas",
    "start_latent",
    "token_shift",
]
