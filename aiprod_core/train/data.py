"""Training samples. Each sample is a pure function of (seed, phase, step, item), so a resumed or
multi-process run sees exactly the data an uninterrupted single-process run would."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..world import (
    ALL_SHAPES,
    COLOURS,
    MOTIONS,
    add_distractors,
    caption,
    captioned_scene,
    casual,
    render,
    world_flow,
)
from .phases import Phase

ATTRIBUTE_CLASSES = {"colour": len(COLOURS), "shape": len(ALL_SHAPES), "motion": len(MOTIONS)}


def item_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@dataclass
class Sample:
    caption: str
    video: torch.Tensor | None = None  # [3,F,H,W] in [-1,1]
    latent: torch.Tensor | None = None  # [C,t,h,w], when the source has cached latents
    labels: dict[str, int] | None = None  # attribute classes for the text objective; -1 = unknown
    flow: torch.Tensor | None = None  # [F-1,H,W,2] pixel flow of the clip, when training with warped noise
    pool_key: int | None = None  # the scene's place in its phase's pool (Phase.world_pool): its latent is kept
    # noise it along `flow` whatever the phase's fraction: a camera move is not in the caption, so the noise is the
    # only thing that can say how the camera moves (with plain noise the model would learn random camera moves)
    always_warp: bool = False


def video_tensor(frames: np.ndarray) -> torch.Tensor:
    """[T,H,W,3] float 0..1 or uint8 -> [3,T,H,W] float in [-1,1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames))
    x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
    return x.permute(3, 0, 1, 2) * 2 - 1


def area_downscale(video: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """[B,3,F,H,W] -> [B,3,F,H/factor,W/factor], frame by frame, averaging pixels (no aliasing)."""
    b, c, f, h, w = video.shape
    low = F.avg_pool2d(video.transpose(1, 2).reshape(b * f, c, h, w), factor)
    return low.reshape(b, f, c, h // factor, w // factor).transpose(1, 2)


class WorldData:
    """Clips of the synthetic world, captioned in a random one of twelve languages (training frames only)."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        # latents of the running phase's pooled scenes, by pool key; the trainer fills it as it encodes them
        self.latents: dict[int, torch.Tensor] = {}
        self._pool_phase: int | None = None

    def sample(self, phase: Phase, phase_index: int, step: int, item: int) -> Sample:
        seed = item_seed(self.seed, phase_index, step, item)
        spec = phase.spec
        focus = np.random.default_rng([seed, 5])  # hard-example mining: its own stream
        if phase.focus_share and focus.random() < phase.focus_share:
            spec = phase.focus_spec(phase.focus[int(focus.integers(len(phase.focus)))])
        key = scene_seed = None
        if phase.world_pool:
            if phase_index != self._pool_phase:  # one phase's pool at a time
                self.latents.clear()
                self._pool_phase = phase_index
            key = seed % phase.world_pool
            scene_seed = item_seed(self.seed, phase_index, key, 0, 2)
        language = None  # captioned_scene draws one of the twelve from the same stream
        if phase.languages:
            language = phase.languages[int(np.random.default_rng([seed, 1]).integers(len(phase.languages)))]
        scene, language, text, _ = captioned_scene(seed, spec, language, scene_seed=scene_seed)
        latent = self.latents.get(key)  # None without a pool, or for a scene not encoded yet
        video = None if latent is not None else video_tensor(render(scene, spec.frames, spec.height, spec.width))
        styles = np.random.default_rng([seed, 4])  # plain and casual captions: their own stream
        if phase.plain_captions and styles.random() < phase.plain_captions:
            text, _ = caption(scene, language, styles, split="train-plain")
        elif phase.casual_captions and styles.random() < phase.casual_captions:
            text = casual(text, styles)
        rng = np.random.default_rng([seed, 3])  # streams 0-2 are the clip's own (world.captioned_scene)
        if phase.caption_distractors and rng.random() < phase.caption_distractors:
            text = add_distractors(text, language, rng)
        objs = scene.objects
        labels = {"colour": -1, "shape": -1, "motion": -1}
        if len(objs) == 1:  # one label per clip: two-object captions teach through the flow loss only
            o = objs[0]
            labels = {"colour": COLOURS.index(o.colour), "shape": ALL_SHAPES.index(o.shape), "motion": MOTIONS.index(o.motion)}
        flow = None
        camera = scene.camera is not None
        if phase.warped_noise > 0 or camera:  # the world's known motion, exact (no extraction error)
            flow = world_flow(scene, spec.frames, spec.height, spec.width)
        return Sample(caption=text, video=video, latent=latent, labels=labels, flow=flow, always_warp=camera,
                      pool_key=key)
