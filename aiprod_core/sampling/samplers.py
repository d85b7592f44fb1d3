"""Rectified-flow samplers as pure functions, in the manner of k-diffusion's `sampling.py`.

`model(x, sigma)` returns the velocity `v = noise - x0` for `x_t = (1 - sigma) x0 + sigma noise`,
so `dx/dsigma = v` and `x0 = x - sigma v`. Nothing here keeps state between calls.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict], None]


def _sigma(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return s.to(x.dtype).expand(x.shape[0])


def _euler_step(model: Velocity, x: torch.Tensor, sigmas: torch.Tensor, i: int,
                callback: Callback | None) -> tuple[torch.Tensor, torch.Tensor]:
    """One Euler step from sigmas[i] to sigmas[i + 1]: (the next x, the velocity at x). The velocity is reported to
    `callback` with the clean latent it implies (x0 = x - sigma v)."""
    s = sigmas[i]
    v = model(x, _sigma(s, x))
    if callback is not None:
        callback({"i": i, "steps": len(sigmas) - 1, "x": x, "sigma": s, "denoised": x - s * v})
    return x + (sigmas[i + 1] - s) * v, v


@torch.no_grad()
def sample_euler(model: Velocity, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback | None = None) -> torch.Tensor:
    """Euler steps along the flow ODE from sigmas[0] to sigmas[-1]. x: [B,C,t,h,w] at sigmas[0]."""
    for i in range(len(sigmas) - 1):
        x, _ = _euler_step(model, x, sigmas, i, callback)
    return x


@torch.no_grad()
def sample_heun(model: Velocity, x: torch.Tensor, sigmas: torch.Tensor, callback: Callback | None = None) -> torch.Tensor:
    """Heun's second-order method (Karras et al. 2022, Algorithm 1 without churn); Euler on the last step to 0."""
    for i in range(len(sigmas) - 1):
        x_euler, v = _euler_step(model, x, sigmas, i, callback)
        s, s_next = sigmas[i], sigmas[i + 1]
        if s_next == 0:
            x = x_euler
        else:
            v_next = model(x_euler, _sigma(s_next, x))
            x = x + (s_next - s) * (v + v_next) / 2
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {"euler": sample_euler, "heun": sample_heun}


def noise_like(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Seeded Gaussian noise drawn on the CPU, so a seed gives the same clip on any device."""
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(shape, generator=g, dtype=dtype)


def start_latent(noise: torch.Tensor, sigma0: torch.Tensor, init: torch.Tensor | None = None) -> torch.Tensor:
    """The latent at sigma0: pure noise, or `(1 - s) init + s noise` when continuing from a latent."""
    if init is None:
        return noise
    if init.shape != noise.shape:
        raise ValueError(f"initial latent has shape {tuple(init.shape)}; expected {tuple(noise.shape)}")
    return (1 - sigma0) * init + sigma0 * noise
