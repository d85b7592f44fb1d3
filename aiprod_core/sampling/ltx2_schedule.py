"""LTX-2's sampling as pure functions: its sigma schedule, the distilled models' fixed sigmas, its guidance and
its Euler step.

- Schedule: the token-count shift and terminal stretch of `schedules.ltx_sigmas`, in the float32 arithmetic of
  Lightricks' LTX2Scheduler, with its default of 4096 tokens when no latent is given.
- Distilled models take fixed sigmas instead: 8 steps from pure noise, and 3 steps from 0.909375 for the
  refinement after the 2x upsampler (stage 2, started from the upsampled latent re-noised to its first sigma).
- Guidance acts on the denoised prediction x0, not on the velocity: CFG (Ho & Salimans 2022) plus STG, the pull
  away from a prediction whose self-attention is skipped in a few blocks, then a rescale toward the conditional
  prediction's standard deviation (Lin et al. 2024, "Common diffusion noise schedules...", section 3.4).
  The CFG and STG terms are affine in x0 = x - sigma v, so they are the same in velocity space; the rescale is
  not, which is why `guide_velocity` goes through x0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .schedules import token_shift

DEFAULT_TOKENS = 4096  # LTX2Scheduler's token count when it is given no latent
TERMINAL = 0.1

# Tuned with the distillation: the distilled model expects exactly these noise levels.
DISTILLED_SIGMAS = (1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0)
STAGE_2_DISTILLED_SIGMAS = (0.909375, 0.725, 0.421875, 0.0)  # the tail of the above, after the upsampler


def latent_tokens(shape: Sequence[int]) -> int:
    """Tokens of a latent [B,C,t,h,w]: t*h*w, as LTX-2's transformer patchifies with patch size 1."""
    if len(shape) != 5:
        raise ValueError(f"latent shape {tuple(shape)} is not [B,C,t,h,w]; pass the video latent's shape")
    return math.prod(shape[2:])


def ltx2_sigmas(steps: int, tokens: int = DEFAULT_TOKENS, terminal: float | None = TERMINAL) -> torch.Tensor:
    """[steps + 1] sigmas from 1 to 0 for a latent of `tokens` tokens (`latent_tokens(shape)`).

    shift = 0.95 + 1.1 (tokens - 1024) / 3072, `s' = e^shift / (e^shift + 1/s - 1)`, stretched so the last
    non-zero sigma is `terminal` (None: no stretch). One step gives [1, 0] (the stretch has nothing to stretch).

    `schedules.ltx_sigmas` is the same formula in float64. This one keeps Lightricks' float32 arithmetic and
    order: past ~10k tokens the stretch divides by a small 1 - s'_last, and the two part by up to 4e-5.
    """
    if steps < 1:
        raise ValueError(f"steps={steps} must be at least 1")
    if tokens < 1:
        raise ValueError(f"tokens={tokens} must be at least 1; pass latent_tokens(latent.shape)")
    e = math.exp(token_shift(tokens))
    t = torch.linspace(1.0, 0.0, steps + 1)  # float32
    sigmas = torch.where(t != 0, e / (e + (1 / t - 1)), 0.0)
    if terminal is not None and steps > 1:
        nonzero = sigmas != 0
        one_minus = 1.0 - sigmas[nonzero]
        sigmas[nonzero] = 1.0 - one_minus / (one_minus[-1] / (1.0 - terminal))
    return sigmas


def distilled_sigmas(stage: int = 1) -> torch.Tensor:
    """The distilled model's fixed sigmas: stage 1 (8 steps from noise) or stage 2 (3 steps after the upsampler)."""
    if stage not in (1, 2):
        raise ValueError(f"stage={stage}; the distilled schedule has stage 1 (from noise) and 2 (refinement)")
    return torch.tensor(DISTILLED_SIGMAS if stage == 1 else STAGE_2_DISTILLED_SIGMAS, dtype=torch.float32)


@dataclass(frozen=True)
class LTX2Guidance:
    """Guidance strengths. cfg 1 and stg 0 switch their passes off; rescale 0 keeps the guided prediction as is.

    stg_blocks: the transformer blocks whose self-attention the perturbed pass skips.
    """

    cfg: float = 3.0
    stg: float = 1.0
    rescale: float = 0.7
    stg_blocks: tuple[int, ...] = (29,)

    @property
    def needs_uncond(self) -> bool:
        return not math.isclose(self.cfg, 1.0)

    @property
    def needs_perturbed(self) -> bool:
        return not math.isclose(self.stg, 0.0)


LTX2_VIDEO_GUIDANCE = LTX2Guidance()  # LTX-2 (19B dev): 40 steps, CFG 3, STG 1 on block 29, rescale 0.7
LTX2_3_VIDEO_GUIDANCE = LTX2Guidance(stg_blocks=(28,))  # LTX-2.3: 30 steps, STG on block 28
NO_GUIDANCE = LTX2Guidance(cfg=1.0, stg=0.0, rescale=0.0, stg_blocks=())  # the distilled models


def guide_denoised(
    cond: torch.Tensor,
    uncond: torch.Tensor | None = None,
    perturbed: torch.Tensor | None = None,
    guidance: LTX2Guidance = LTX2_VIDEO_GUIDANCE,
) -> torch.Tensor:
    """Guided x0 from the conditional, unconditional and perturbed x0 predictions (any same shape).

    `cond + (cfg - 1)(cond - uncond) + stg (cond - perturbed)`, then scaled by `r std(cond)/std(pred) + 1 - r`.
    The standard deviations are over the whole tensor, batch included, as in Lightricks' guider. For a
    video-only model the audio-isolation term of LTX-2's guider is zero and is left out.
    """
    pred = cond
    if guidance.needs_uncond:
        if uncond is None:
            raise ValueError(f"cfg={guidance.cfg} needs the unconditional prediction; pass uncond or set cfg=1")
        pred = pred + (guidance.cfg - 1) * (cond - uncond)
    if guidance.needs_perturbed:
        if perturbed is None:
            raise ValueError(f"stg={guidance.stg} needs the perturbed prediction; pass perturbed or set stg=0")
        pred = pred + guidance.stg * (cond - perturbed)
    if guidance.rescale != 0:
        factor = cond.std() / pred.std()
        pred = pred * (guidance.rescale * factor + (1 - guidance.rescale))
    return pred


def _per_sample(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor | float:
    if isinstance(sigma, torch.Tensor) and sigma.ndim == 1:
        return sigma.to(x.dtype).view(-1, *([1] * (x.ndim - 1)))  # [B] -> [B,1,1,1,1]
    return sigma


def guide_velocity(
    x: torch.Tensor,
    sigma: torch.Tensor | float,
    v_cond: torch.Tensor,
    v_uncond: torch.Tensor | None = None,
    v_perturbed: torch.Tensor | None = None,
    guidance: LTX2Guidance = LTX2_VIDEO_GUIDANCE,
) -> torch.Tensor:
    """`guide_denoised` for a model that predicts the velocity v = noise - x0, as our samplers expect.

    x, v_*: [B,C,t,h,w] at noise level sigma (a number or [B], non-zero); returns the guided velocity.
    """
    s = _per_sample(sigma, x)
    x0 = {k: None if v is None else x - s * v for k, v in (("c", v_cond), ("u", v_uncond), ("p", v_perturbed))}
    return (x - guide_denoised(x0["c"], x0["u"], x0["p"], guidance)) / s


def euler_step(
    x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor | float, sigma_next: torch.Tensor | float
) -> torch.Tensor:
    """One Euler step of the flow ODE from the denoised prediction: v = (x - x0) / sigma, x + (sigma_next - sigma) v.

    Float32 arithmetic whatever x's dtype, and the result back in x's dtype, as Lightricks' EulerDiffusionStep.
    """
    sigma, sigma_next = float(sigma), float(sigma_next)
    if sigma == 0:
        raise ValueError("sigma=0: the sample is already clean and has no velocity; end the schedule there")
    v = ((x.float() - denoised.float()) / sigma).to(x.dtype)
    dt = torch.tensor(sigma_next, dtype=torch.float32) - torch.tensor(sigma, dtype=torch.float32)
    return (x.float() + v.float() * dt).to(x.dtype)
