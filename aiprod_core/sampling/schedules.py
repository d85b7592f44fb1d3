"""Rectified-flow sigma schedules.

LTX-Video shifts the schedule toward high noise by an amount that grows with the number of latent
tokens (bigger clips need more steps at high noise), then stretches it so the last non-zero sigma is
`terminal`. The same formula is ComfyUI's LTXVScheduler and LTX-2's LTX2Scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

BASE_SHIFT, MAX_SHIFT = 0.95, 2.05
BASE_TOKENS, MAX_TOKENS = 1024, 4096
MIN_SHIFT = 0.5  # the linear rule keeps falling below 1024 tokens; tiny clips keep at least this much shift


def token_shift(tokens: int, min_shift: float = MIN_SHIFT) -> float:
    """LTX's shift for a latent of `tokens` tokens: 0.95 at 1024, 2.05 at 4096, linear in between and beyond."""
    m = (MAX_SHIFT - BASE_SHIFT) / (MAX_TOKENS - BASE_TOKENS)
    return max(min_shift, BASE_SHIFT + m * (tokens - BASE_TOKENS))


def shifted_sigmas(steps: int, shift: float, terminal: float | None = 0.1) -> torch.Tensor:
    """[steps + 1] sigmas from 1 to 0: `s' = e^shift / (e^shift + 1/s - 1)`, stretched to `terminal`."""
    if steps < 1:
        raise ValueError(f"steps={steps} must be at least 1")
    t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    e = math.exp(shift)
    sigmas = torch.where(t > 0, e / (e + (1.0 / t.clamp_min(1e-12) - 1.0)), torch.zeros_like(t))
    if terminal is not None and steps > 1:
        nz = sigmas > 0
        one_minus = 1.0 - sigmas[nz]
        sigmas[nz] = 1.0 - one_minus * (1.0 - terminal) / one_minus[-1]
    return sigmas.float()


def ltx_sigmas(steps: int, tokens: int, shift: float | None = None, terminal: float | None = 0.1) -> torch.Tensor:
    """The LTX schedule for a latent of `tokens` tokens; `shift` overrides the token-count rule."""
    return shifted_sigmas(steps, token_shift(tokens) if shift is None else shift, terminal)


def denoise_sigmas(sigmas_for: Callable[[int], torch.Tensor], steps: int, denoise: float) -> torch.Tensor:
    """Sigmas for a partial run (video-to-video, upscale refinement), in ComfyUI's manner: build the
    schedule for steps / denoise steps and keep its last steps + 1 values."""
    if not 0.0 < denoise <= 1.0:
        raise ValueError(f"denoise={denoise} must be in (0, 1]; 1 starts from pure noise")
    total = max(steps, round(steps / denoise))
    return sigmas_for(total)[-(steps + 1) :]
