"""What hybridization distils on: the teacher's own generations from a prompt list, or synthetic-world clips encoded
by the teacher's VAE; their captions encoded by its text encoder; and the noise levels the sampler visits.

The clips are drawn and encoded once, at the start of a run, and kept in the run folder (`distil_data.safetensors`):
a resumed run reads them back instead of encoding again. A second, held-out set with fixed noise and noise levels
measures the student's velocity error against the teacher's on the same inputs at every logged step.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..checkpoint import read_safetensors, save_safetensors_atomic
from ..sampling.loop import sample_latent
from ..world import WorldSpec, make_clip
from .data import item_seed, video_tensor

DATA_KEY = "aiprod.distil_data"


@dataclass
class ClipSet:
    """Clean latents [N,C,t,h,w], their captions' text states [N,L,D] and masks [N,L], and the captions."""

    latents: torch.Tensor
    context: torch.Tensor
    mask: torch.Tensor
    captions: list[str]

    def __len__(self) -> int:
        return len(self.latents)


def sampler_sigmas(model, shape: tuple[int, ...], steps: int) -> torch.Tensor:
    """[steps] the non-zero noise levels of `model`'s sampler for a latent [B,C,t,h,w] (its family's schedule:
    LTX's token shift, or LTX-2's): the levels at which the student will be asked for a velocity."""
    return model.family.sampling(model, shape, steps, None)["sigmas"][:-1]


def world_clips(model, count: int, clip: tuple[int, int, int], seed: int, stream: int) -> ClipSet:
    """`count` world clips of `clip` (frames, height, width), drawn from (seed, stream, i), encoded by `model`'s VAE
    (the posterior mean) and text encoder."""
    frames, height, width = clip
    spec = WorldSpec(frames=frames, height=height, width=width)
    clips = [make_clip(item_seed(seed, stream, i), spec) for i in range(count)]
    video = torch.stack([video_tensor(c.frames) for c in clips])  # (N, 3, F, H, W)
    with torch.no_grad():
        latents = model.vae.encode(video.to(next(model.vae.parameters()).device)).float()
        context, mask = model.text_encoder.encode([c.caption for c in clips])
    return ClipSet(latents.cpu(), context.float().cpu(), mask.cpu(), [c.caption for c in clips])


def teacher_generations(model, prompts: tuple[str, ...], count: int, clip: tuple[int, int, int], seed: int,
                        stream: int, steps: int = 20, cfg: float = 3.0) -> ClipSet:
    """`count` latents the teacher samples itself (CFG against the empty prompt), for the prompts in turn, each from
    the seed (seed, stream, i): no video data is needed, and the student learns the teacher on what it makes."""
    if not prompts:
        raise ValueError("teacher generations need at least one prompt; give a prompt list or use the world's clips")
    shape = (1, *model.config.vae.latent_shape(*clip))
    captions = [prompts[i % len(prompts)] for i in range(count)]
    context, mask = model.text_encoder.encode(captions)
    neg_context, neg_mask = model.text_encoder.encode([""])
    how = model.family.sampling(model, shape, steps, cfg)  # the family's schedule and guidance (LTX-2's on x0)
    latents = [sample_latent(model.backbone, context[i : i + 1], mask[i : i + 1], neg_context, neg_mask, shape,
                             seed=item_seed(seed, stream, i), **how).float().cpu() for i in range(count)]
    return ClipSet(torch.cat(latents), context.float().cpu(), mask.cpu(), captions)


def save_clips(path: str | os.PathLike, sets: dict[str, ClipSet]) -> None:
    tensors = {f"{name}.{k}": getattr(s, k).contiguous() for name, s in sets.items()
               for k in ("latents", "context", "mask")}
    meta = {DATA_KEY: json.dumps({name: s.captions for name, s in sets.items()})}
    save_safetensors_atomic(tensors, path, meta)


def load_clips(path: str | os.PathLike) -> dict[str, ClipSet]:
    tensors, meta = read_safetensors(Path(path))
    captions = json.loads(meta[DATA_KEY])
    return {name: ClipSet(tensors[f"{name}.latents"], tensors[f"{name}.context"], tensors[f"{name}.mask"], caps)
            for name, caps in captions.items()}
