"""A user's clips as training data: a folder of videos with same-name .txt captions, or a JSONL of
{"path": ..., "caption": ...}. Clips are grouped in (frames, height, width) buckets; their latents are
cached on disk so the VAE need not stay loaded. A clip that cannot be read or is too short is skipped
and reported, never a crash."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..checkpoint import read_safetensors, save_safetensors_atomic
from ..memory.engine import on_device
from ..models.vae import VAE_CHUNK
from ..video_io import centre_crop, read_video
from .data import Sample, item_seed, video_tensor
from .phases import Phase

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv")
ASPECTS = (1.0, 4 / 3, 3 / 4, 16 / 9, 9 / 16)  # width / height of the resolution buckets


@dataclass
class ClipInfo:
    path: Path
    caption: str
    frames: int
    height: int
    width: int


def list_clips(source: str | os.PathLike) -> list[tuple[Path, str]]:
    """(video path, caption) pairs of a folder (same-name .txt) or a JSONL file."""
    source = Path(source)
    if source.is_file() and source.suffix == ".jsonl":
        pairs = []
        for n, line in enumerate(source.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                p = Path(row["path"])
                pairs.append((p if p.is_absolute() else source.parent / p, str(row["caption"])))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                log.warning("%s line %d skipped: %s (expected {\"path\": ..., \"caption\": ...})", source, n, e)
        return pairs
    if not source.is_dir():
        raise ValueError(f"{source}: not a folder or a .jsonl file; expected a folder of clips with same-name "
                         ".txt captions, or a JSONL of {{\"path\", \"caption\"}}")
    pairs = []
    for p in sorted(source.iterdir()):
        if p.suffix.lower() in VIDEO_SUFFIXES:
            txt = p.with_suffix(".txt")
            if txt.is_file():
                pairs.append((p, txt.read_text(encoding="utf-8").strip()))
            else:
                log.warning("%s skipped: no caption file %s", p, txt.name)
    return pairs


def bucket_for(height: int, width: int, area: int, multiple: int) -> tuple[int, int]:
    """The (height, width) of the nearest aspect bucket with about `area` pixels, in multiples of `multiple`."""
    aspect = min(ASPECTS, key=lambda a: abs(np.log(a) - np.log(width / height)))
    h = max(multiple, round((area / aspect) ** 0.5 / multiple) * multiple)
    w = max(multiple, round((area * aspect) ** 0.5 / multiple) * multiple)
    return h, w


def fit_clip(frames: np.ndarray, n: int, height: int, width: int) -> torch.Tensor:
    """The first n frames, centre-cropped to the bucket's aspect and resized: [3,n,height,width] in [-1,1]."""
    x = centre_crop(video_tensor(frames[:n]), height, width)  # [3,n,h,w]
    return F.interpolate(x.transpose(0, 1), size=(height, width), mode="area").transpose(0, 1)


class VideoFolderData:
    """Training samples from a user's clips, with cached latents."""

    def __init__(self, source: str | os.PathLike, model, cache_dir: str | os.PathLike | None = None, seed: int = 0):
        self.model, self.source, self.seed = model, source, seed
        self.cache_dir = Path(cache_dir) if cache_dir else None
        # where latents are encoded (None: where the VAE is). A LoRA run that plans GPU memory sets its device and
        # keeps the VAE in CPU memory: the encoder visits the GPU for each clip not yet cached, once
        self.encode_device: torch.device | None = None
        self.clips: list[ClipInfo] = []
        self.skipped: list[tuple[str, str]] = []
        for path, caption in list_clips(source):
            try:
                frames, _ = read_video(path)
            except (ValueError, FileNotFoundError, OSError) as e:
                self.skipped.append((str(path), str(e)))
                continue
            t, h, w, _ = frames.shape
            self.clips.append(ClipInfo(path, caption, t, h, w))
        for p, why in self.skipped:
            log.warning("skipped %s: %s", p, why)
        if not self.clips:
            raise ValueError(f"{source}: no usable clips (skipped {len(self.skipped)}); expected mp4/webm/mov files "
                             "with same-name .txt captions, or a JSONL of {\"path\", \"caption\"}")
        self._buckets: dict[tuple, dict] = {}

    def buckets(self, phase: Phase) -> dict[tuple[int, int, int], list[ClipInfo]]:
        """Clips long enough for the phase, grouped by (frames, height, width)."""
        spec = phase.spec
        key = (spec.frames, spec.height, spec.width)
        if key not in self._buckets:
            multiple = self.model.config.vae.spatial_compression
            groups: dict[tuple[int, int, int], list[ClipInfo]] = {}
            too_short = []
            for c in self.clips:
                if c.frames < spec.frames:
                    too_short.append(c)
                    continue
                h, w = bucket_for(c.height, c.width, spec.height * spec.width, multiple)
                groups.setdefault((spec.frames, h, w), []).append(c)
            for c in too_short:
                log.warning("phase %s: skipped %s (%d frames; the phase needs %d)", phase.name, c.path, c.frames, spec.frames)
            if not groups:
                raise ValueError(f"phase {phase.name!r}: no clip has {spec.frames} frames (longest: "
                                 f"{max(c.frames for c in self.clips)}); use a phase with fewer frames")
            self._buckets[key] = groups
        return self._buckets[key]

    def cache_phase(self, phase: Phase, progress: bool = True, share: tuple[int, int] = (0, 1)) -> None:
        """Encode every clip of the phase's buckets that is not cached yet, before training places the backbone:
        on a GPU the encoder then has the memory to itself. share=(rank, processes): this process's part."""
        from tqdm.auto import tqdm

        todo = [(c, key) for key, clips in sorted(self.buckets(phase).items()) for c in clips][share[0]::share[1]]
        for c, key in tqdm(todo, desc=f"latents for {phase.name}", unit="clip", disable=not progress):
            self.latent(c, *key)

    def sample(self, phase: Phase, phase_index: int, step: int, item: int) -> Sample:
        groups = self.buckets(phase)
        keys = sorted(groups)
        # one bucket per step, chosen by the step alone, so every item of a batch has the same shape
        weights = np.array([len(groups[k]) for k in keys], float)
        r = item_seed(self.seed, phase_index, step) / 2**32
        key = keys[int(np.searchsorted(np.cumsum(weights) / weights.sum(), r, side="right").clip(0, len(keys) - 1))]
        clip = groups[key][item_seed(self.seed, phase_index, step, item, 1) % len(groups[key])]
        return Sample(caption=clip.caption, latent=self.latent(clip, *key))

    @torch.no_grad()
    def latent(self, clip: ClipInfo, frames: int, height: int, width: int) -> torch.Tensor:
        """[C,t,h,w] latent of the clip in this bucket, from the disk cache when present."""
        st = clip.path.stat()
        dtype = next(self.model.vae.parameters()).dtype  # a bf16 VAE's latents are not a float32 one's
        name = hashlib.sha256(f"{clip.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{frames}x{height}x{width}|"
                              f"{self.model.source}{'' if dtype == torch.float32 else f'|{dtype}'}".encode()).hexdigest()[:32]
        path = self.cache_dir / f"{name}.safetensors" if self.cache_dir else None
        if path is not None and path.is_file():
            return read_safetensors(path)[0]["latent"]
        video, _ = read_video(clip.path, max_frames=frames)
        x = fit_clip(video, frames, height, width)
        vae = self.model.vae
        device = self.encode_device or next(vae.parameters()).device
        with on_device(vae, device, ("encoder",)):
            z = vae.encode(x[None], temporal_chunk=VAE_CHUNK)[0].float().cpu()  # chunks go to the device one by one
        if path is not None:
            save_safetensors_atomic({"latent": z}, path, {"source": str(clip.path)})
        return z
