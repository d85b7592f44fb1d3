"""Image-to-video: does a clip that starts from a picture keep it, and still do what the prompt and the camera say?

Two sets, in one run, each generated with the same prompt and seed from text alone and from text + the first
frame of the world's own clip (`conditioning.first_frames_condition`):

- world clips (one moving object), prompted with their caption: the first frame's mean absolute error to the
  picture (0..1), and colour, shape and direction of the clip (OpenCV classifier) against the caption;
- camera presets: two still objects filmed with a preset, with warped noise and warp guidance along the preset's
  flow: whether the preset is the clip's dominant motion, and whether both objects are on screen. From text alone
  the model mostly draws one object (see eval.motion), and then turns and zooms look like pans; from the picture
  both objects are there.

And video extension: each world clip continued from its last 1 + temporal compression frames
(`conditioning.continuation_frames`) with its caption: the kept frames' error, and colour, shape and direction of the
continuation, against the world's own render of the same scene carried on as far (objects may leave the frame).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from tqdm.auto import tqdm

from ..conditioning import EXTEND_CONTEXT, MotionGuidance, continuation_frames, first_frames_condition
from ..flow.camera import PRESETS, camera_flow, dominant_preset
from ..flow.extract import extract_flow
from ..model import VideoModel
from ..models.vae import decode_latent
from ..sampling.loop import sample_latent
from ..text import EmbeddingCache, encode_cached
from ..train.data import item_seed
from ..world import EASY, caption, make_clip, render
from .classify import classify_clip, count_objects
from .motion import guidance_settings

CONDITIONS = ("text", "text_and_image")


def _frames01(frames: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(frames)).float()
    return x / 255 if frames.dtype == np.uint8 else x


def _condition(vae, starts: list[torch.Tensor], shape1: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial latents of a batch whose clips start with these frames, and their (shared) noise mask."""
    conds = [first_frames_condition(vae, x, (1, *shape1)) for x in starts]
    return torch.cat([z for z, _ in conds]), conds[0][1]


def _world_scores(clip, video: np.ndarray) -> dict:
    """Colour, shape and direction of a clip of one world object against the object the scene holds."""
    o, lab = clip.scene.objects[0], classify_clip(video)
    return {"colour": float(lab.colour == o.colour), "shape": float(lab.shape == o.shape),
            "direction": float(lab.direction == o.motion)}


def _means(rows: list[dict]) -> dict:
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}


@torch.no_grad()
def image_to_video_adherence(model: VideoModel, clips: int = 16, per_preset: int = 2, steps: int = 20,
                             cfg: float = 3.0, seed: int = 0, progress: bool = True,
                             motion: MotionGuidance | None = None) -> dict:
    """Text-only vs text + first frame, for world clips and camera presets (module doc). `motion`: how the camera
    clips follow their presets' flows (each clip has its preset's, so its flow is None; None: the default
    settings)."""
    motion = guidance_settings(motion, "each camera clip with its preset's")
    c = model.config
    frames, height, width = c.frames, c.height, c.width
    items = _items(c, clips, per_preset, seed)
    videos, extended = _videos(model, items, clips, steps, cfg, seed, motion, progress)

    # ceiling of the camera set: the world's own render of each scene, measured the same way
    ceiling = [{"direction_agrees": float(dominant_preset(extract_flow(v, "farneback").flow)[0] == p),
                "two_objects": float(count_objects(v[len(v) // 2]) >= 2)}
               for kind, k, p in items if kind == "camera" for v in [render(k.scene, frames, height, width)]]
    out: dict = {"model": model.source,
                 "settings": {"clips": clips, "per_preset": per_preset, "steps": steps, "cfg": cfg, "seed": seed,
                              "extend_context": EXTEND_CONTEXT, **motion.settings()}}
    rows = {(kind, cond): [] for kind in ("world", "camera") for cond in CONDITIONS}
    for cond in CONDITIONS:
        for (kind, k, preset), video in zip(items, videos[cond]):
            row = {"first_frame_error": float(np.abs(video[0] - _frames01(k.frames[0]).numpy()).mean())}
            if kind == "world":
                row.update(_world_scores(k, video))
            else:
                row.update(direction_agrees=float(dominant_preset(extract_flow(video, "farneback").flow)[0] == preset),
                           two_objects=float(count_objects(video[len(video) // 2]) >= 2))
            rows[kind, cond].append(row)
    for kind, name in (("world", "world_clips"), ("camera", "camera_presets")):
        if rows[kind, CONDITIONS[0]]:
            out[name] = {cond: _means(rows[kind, cond]) for cond in CONDITIONS}
    if ceiling:
        out["camera_presets"]["world_render"] = _means(ceiling)
    if clips:
        world = [k for kind, k, _ in items if kind == "world"]
        n = extended[0][0].shape[0]  # frames the continuation starts with
        out["world_clips"]["extension"] = _means([
            {"kept_frames_error": float(np.abs(video[:n] - last.numpy()).mean()), **_world_scores(k, video)}
            for k, (last, video) in zip(world, extended)])
        out["world_clips"]["extension_world_render"] = _means([
            _world_scores(k, render(k.scene, 2 * frames - n, height, width)[frames - n:]) for k in world])
    return out


def _items(c, clips: int, per_preset: int, seed: int) -> list[tuple]:
    """(kind, clip, preset or None): world clips of one moving object, then two still objects per camera preset."""
    spec = dataclasses.replace(EASY, frames=c.frames, height=c.height, width=c.width, motions=("left", "right", "up", "down"))
    still = dataclasses.replace(spec, motions=("still",), objects=(2, 2))
    items = [("world", make_clip(item_seed(seed, 9, i), spec), None) for i in range(clips)]
    for pi, preset in enumerate(PRESETS):
        for j in range(per_preset):
            k = make_clip(item_seed(seed, 10, pi, j), still)
            scene = dataclasses.replace(k.scene, camera=preset, camera_speed=1.0)
            text, frame_id = caption(scene, k.language, np.random.default_rng([item_seed(seed, 10, pi, j), 2]))
            items.append(("camera", dataclasses.replace(k, scene=scene, caption=text, frame_template_id=frame_id), preset))
    return items


def _videos(model: VideoModel, items: list[tuple], clips: int, steps: int, cfg: float, seed: int,
            motion: MotionGuidance, progress: bool) -> tuple[dict[str, list[np.ndarray]], list[tuple]]:
    """Each item's clip from text alone and from text + its first frame; and (its last frames, the clip that
    continues them) for each world clip."""
    c = model.config
    compression = (c.vae.spatial_compression, c.vae.temporal_compression)
    cache = EmbeddingCache()
    shape1 = c.vae.latent_shape(c.frames, c.height, c.width)
    bar = tqdm(total=2 * len(items) + clips, desc="image-to-video", unit="clip", disable=not progress)
    videos, extended = {cond: [] for cond in CONDITIONS}, []
    for group in ("world", "camera"):
        part = [it for it in items if it[0] == group]
        if not part:
            continue
        ctx, mask = encode_cached(model.text_encoder, [k.caption for _, k, _ in part], cache)
        neg, neg_mask = encode_cached(model.text_encoder, [""] * len(part), cache)
        shape = (len(part), *shape1)
        flows = [camera_flow(p, c.frames, c.height, c.width, 1.0) for _, _, p in part] if group == "camera" else None
        init, keep = _condition(model.vae, [_frames01(k.frames[:1]) for _, k, _ in part], shape1)
        for cond in CONDITIONS:
            extra = dict(init_latent=init, noise_mask=keep) if cond == "text_and_image" else {}
            latent = sample_latent(model.backbone, ctx, mask, neg, neg_mask, shape, steps=steps, cfg=cfg,
                                   seed=seed + (group == "camera"), motion=motion.with_flow(flows) if flows else None,
                                   compression=compression, **extra)
            videos[cond].extend(decode_latent(model.vae, latent).numpy())
            bar.update(len(part))
        if group == "world":  # the same clips continued from their last frames
            lasts = [continuation_frames(_frames01(k.frames), compression[1]) for _, k, _ in part]
            init, keep = _condition(model.vae, lasts, shape1)
            latent = sample_latent(model.backbone, ctx, mask, neg, neg_mask, shape, steps=steps, cfg=cfg, seed=seed,
                                   init_latent=init, noise_mask=keep)
            extended = list(zip(lasts, decode_latent(model.vae, latent).numpy()))
            bar.update(len(part))
    bar.close()
    return videos, extended
