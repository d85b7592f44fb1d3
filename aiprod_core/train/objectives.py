"""Training objectives: rectified flow with LTX's shifted logit-normal sigma, the VAE's reconstruction
+ KL, and the text encoder's own attribute objective."""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from ..sampling.schedules import token_shift
from ..world import COLOURS


def sample_sigmas(batch: int, tokens: int, generator: torch.Generator, uniform_p: float = 0.1,
                  shift: float | None = None) -> torch.Tensor:
    """[B] training sigmas: logit-normal, shifted by `shift` (default: the token-count rule), uniform
    `uniform_p` of the time (LTX-2 trainer's ShiftedLogitNormalTimestepSampler)."""
    s = torch.sigmoid(torch.randn(batch, generator=generator))
    e = torch.exp(torch.tensor(token_shift(tokens) if shift is None else shift))
    s = e / (e + 1 / s.clamp(1e-6, 1 - 1e-6) - 1)
    uniform = torch.rand(batch, generator=generator)
    s = torch.where(torch.rand(batch, generator=generator) < uniform_p, uniform, s)
    return s.clamp(1e-4, 1.0)


def noised(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The rectified-flow point `x_t = (1 - s) x0 + s noise` for per-item sigmas [B]."""
    s = sigma.view(-1, 1, 1, 1, 1).to(x0.dtype)
    return (1 - s) * x0 + s * noise


def flow_loss(backbone: nn.Module, x0: torch.Tensor, context: torch.Tensor, mask: torch.Tensor,
              sigma: torch.Tensor, noise: torch.Tensor, generate: torch.Tensor | None = None,
              voxel_sigma: bool = False) -> torch.Tensor:
    """MSE between the predicted and true velocity `noise - x0` at x_t (`noised`).

    generate: an optional mask broadcastable to x0, 0 where the model is shown x0 itself (a clean first frame, as
    the sampler shows a kept one: sampling.noise_mask) and 1 where it denoises; only those positions are scored.
    voxel_sigma: the backbone takes a noise level per latent voxel (LTX-2), and the clean ones are shown at 0."""
    x_t = noised(x0, noise, sigma)
    if generate is None:
        return F.mse_loss(backbone(x_t, sigma.to(x0.dtype), context, mask).float(), (noise - x0).float())
    generate = generate.to(x0)
    if voxel_sigma:
        sigma = sigma.view(-1, 1, 1, 1).to(x0) * generate[:, 0].expand(x0[:, 0].shape)
    v = backbone(torch.lerp(x0, x_t, generate), sigma.to(x0.dtype), context, mask)
    err = (v.float() - (noise - x0).float()).pow(2) * generate
    return err.sum() / generate.expand_as(x0).sum().clamp_min(1)


def output_preservation_loss(backbone: nn.Module, lora, x_t: torch.Tensor, sigma: torch.Tensor,
                             context: torch.Tensor, mask: torch.Tensor,
                             base_context: torch.Tensor | None = None) -> torch.Tensor:
    """MSE between the adapted and the base model's velocity for prompts the LoRA must leave alone, on the
    training clips' own noisy latents (the differential output preservation of Ostris' ai-toolkit). Called
    with the LoRA's hooks applied; `lora.bypassed()` gives the base model's answer, the target. When the LoRA
    adapts the text encoder too, `context` is the adapted encoder's and `base_context` the base encoder's."""
    sigma = sigma.to(x_t.dtype)
    with torch.no_grad(), lora.bypassed():
        target = backbone(x_t, sigma, context if base_context is None else base_context, mask)
    return F.mse_loss(backbone(x_t, sigma, context, mask).float(), target.float())


def vae_loss(vae: nn.Module, video: torch.Tensor, eps: torch.Tensor, kl_weight: float = 1e-6) -> tuple[torch.Tensor, dict]:
    """L1 + MSE reconstruction of video [B,3,F,H,W] in [-1,1] through a latent sampled with `eps`
    [B,C,t,h,w] (standard normal), plus a small KL to keep the latent well scaled."""
    mean, logvar = vae.encode_moments(video)
    z = mean + eps.to(mean) * torch.exp(0.5 * logvar)
    recon = vae.decode(vae.normalize(z))
    l1 = (recon - video).abs().mean()
    mse = F.mse_loss(recon, video)
    kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
    return l1 + mse + kl_weight * kl, {"l1": l1.item(), "mse": mse.item(), "kl": kl.item()}


class AttributeHeads(nn.Module):
    """Linear heads on the masked-mean text state that predict each clip's attributes.

    A text encoder trained only through the denoising loss learns to be ignored; these heads give it a
    signal of its own that the attribute words matter.
    """

    def __init__(self, dim: int, classes: dict[str, int]):
        super().__init__()
        self.heads = nn.ModuleDict({k: nn.Linear(dim, n) for k, n in classes.items()})

    def logits(self, hidden: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each head's logits [B, classes] on the masked mean of the text states."""
        pooled = masked_mean(hidden, mask)  # [B, D]
        return {k: head(pooled) for k, head in self.heads.items()}

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor, labels: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.logits(hidden, mask)
        # summed over labelled items and divided by the batch size (not by the labelled count), so the
        # loss of a batch split over processes averages to the loss of the whole batch
        losses = [F.cross_entropy(logits[k], y, ignore_index=-1, reduction="sum") / len(y)
                  for k, y in labels.items() if k in logits]
        return torch.stack(losses).mean()


COLOUR_WORDS = COLOURS  # the world's colour names are its English colour words
_COLOUR = re.compile(r"\b(" + "|".join(COLOUR_WORDS) + r")\b", re.IGNORECASE)


def colour_swapped(caption: str, generator: torch.Generator) -> str | None:
    """The caption with its one English colour word replaced by another colour's (drawn with `generator`, same
    capitalisation), or None when it names no English colour or more than one."""
    found = _COLOUR.findall(caption)
    if len(found) != 1:
        return None
    word = found[0]
    others = [c for c in COLOUR_WORDS if c != word.lower()]
    other = others[int(torch.randint(len(others), (), generator=generator))]
    return _COLOUR.sub(other.capitalize() if word[0].isupper() else other, caption)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[B,L,D] states, [B,L] mask -> [B,D] the mean over the valid tokens."""
    m = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1)


def colour_contrast_loss(states: torch.Tensor, mask: torch.Tensor, swapped_states: torch.Tensor,
                         swapped_mask: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    """Mean of relu(cos - margin) between the masked-mean text states of captions and of their colour-swapped
    twins: the encoder must tell "a red circle moving left" from "a green circle moving left" (whose states had
    cosine 0.92), not only the heads reading its pooled output."""
    cos = F.cosine_similarity(masked_mean(states, mask), masked_mean(swapped_states, swapped_mask), dim=-1)
    return F.relu(cos - margin).mean()
