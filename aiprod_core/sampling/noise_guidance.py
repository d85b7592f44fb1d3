"""Noise guidance: keep the noise part of the latent on a given (warped) noise during chosen steps.

Rectified flow writes `x_t = (1 - s) x0 + s eps`. The initial latent is the guide noise itself; in the
guided steps after the first, the sampler's running estimate of eps (from the last step's x0 prediction)
is pulled toward the guide noise by `pull`:

    x <- x + s * pull * (guide - eps_hat),   eps_hat = (x - (1 - s) x0_hat) / s

so the motion written into the noise survives the early steps, where the layout and motion of the clip are
decided, instead of only seeding them. Outside the step range the sampler runs untouched.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .samplers import Callback, Velocity


def check_step_range(start: float, end: float) -> None:
    """A guided range of the run given as fractions of its steps, checked before any step is planned."""
    if not 0.0 <= start <= end <= 1.0:
        raise ValueError(f"guidance step range ({start}, {end}) must satisfy 0 <= start <= end <= 1 (fractions of the steps)")


def step_range(steps: int, start: float, end: float) -> range:
    """Steps i with start <= i / steps < end (fractions of the run, as ComfyUI's start/end percent)."""
    check_step_range(start, end)
    return range(round(start * steps), round(end * steps))


@torch.no_grad()
def sample_noise_guided(
    sampler: Callable[..., torch.Tensor],
    model: Velocity,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    guide: torch.Tensor,
    guided: range,
    pull: float = 1.0,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Run `sampler` (a pure sampler such as sample_euler) step by step over sigmas, pulling the noise part of
    x toward guide [B,C,t,h,w] at the start of every step in `guided` after the first. x: [B,C,t,h,w] at
    sigmas[0]."""
    if guide.shape != x.shape:
        raise ValueError(f"guide noise has shape {tuple(guide.shape)}; expected the latent's {tuple(x.shape)}")
    n = len(sigmas) - 1
    last: dict = {}

    def on_step(d: dict, i: int) -> None:
        last.update(d)
        if callback is not None:
            callback({**d, "i": i, "steps": n})

    for i in range(n):
        s = sigmas[i]
        if i in guided and "denoised" in last and pull and s > 0:
            eps_hat = (x - (1 - s) * last["denoised"]) / s
            x = x + s * pull * (guide.to(x) - eps_hat)
        x = sampler(model, x, sigmas[i : i + 2], lambda d, i=i: on_step(d, i))
    return x
