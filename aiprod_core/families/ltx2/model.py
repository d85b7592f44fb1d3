"""LTX-2 as a model the product runs: its components loaded from the files as users have them, and the settings
the pipeline asks of a model (default clip, latent geometry).

Two layouts, told apart by which files are given:
- Lightricks' single file (`ltx-2-19b-dev.safetensors`, fp8 and distilled kin): the transformer, the text
  connector and the video VAE under their prefixes (the audio stream beside them is never read), the config in the
  metadata; Gemma 3 from its own file or folder; optionally the spatial upscaler file.
- ComfyUI's split files: `diffusion_models/` (the transformer, config in its metadata), `vae/` (the video VAE),
  `text_encoders/` (Gemma 3, and the text projection file holding the feature extractor and the connector) and
  `latent_upscale_models/` (the upscaler). A split file is used where given; the checkpoint's own component where
  not.

Every file is checked for the component its slot needs before any weight is read (`check_ltx2_files`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from ...checkpoint import check_safetensors
from ...config import ConfigError
from .config import LTX2TransformerConfig
from .files import LTX2File, LTX2FileError, open_ltx2
from .gemma import LANGUAGE_MODEL_PREFIXES
from .text import LTX2TextEncoder, load_ltx2_text_encoder
from .transformer import LTX2VideoTransformer, load_video_transformer
from .upscaler import LTX2LatentUpsampler, LTX2UpsamplerConfig, load_ltx2_upsampler
from .vae import LTX2VideoVAE
from .vae_config import LTX2VAEConfig
from .vae_loader import load_ltx2_video_vae, read_vae_config

# LTX-2's pipelines' defaults (ltx-pipelines PipelineParams): 768x512, 121 frames at 24 fps
DEFAULT_CLIP = {"frames": 121, "height": 512, "width": 768, "fps": 24.0}
# STG perturbs this block of the 48 (ltx-pipelines: LTX-2 block 29, LTX-2.3 block 28)
STG_BLOCK, STG_BLOCK_2_3 = 29, 28

GEMMA_HINT = ("Gemma 3 12B: ComfyUI's text_encoders/gemma_3_12B_it*.safetensors or the Hugging Face folder "
              "google/gemma-3-12b-it")
KEYWORDS = {slot: f"{slot}=" for slot in ("checkpoint", "text_encoder", "vae", "text_projection", "upscaler")}
SLOTS = {  # slot -> what it holds, for messages
    "checkpoint": "the LTX-2 transformer (ltx-2-19b-*.safetensors, or ComfyUI's diffusion_models/ file)",
    "vae": "the LTX-2 video VAE (ComfyUI's vae/ file, or the single-file checkpoint)",
    "text_projection": "LTX-2's text projection and connector (text_embedding_projection.* and "
                       "video_embeddings_connector.*, or the single-file checkpoint)",
    "upscaler": "LTX-2's spatial upscaler (ltx-2-spatial-upscaler-x2-1.0.safetensors)",
    "text_encoder": GEMMA_HINT,
}
# ltx-core reads no config field that tells a distilled transformer from a dev one, and ltx-pipelines is told by
# its command line (--distilled-checkpoint-path); Lightricks and ComfyUI name the files
# `ltx-2-19b-distilled*.safetensors`. The name is the signal here; a caller can override it (LTX2ModelConfig.distilled).
DISTILLED_MARK = "distilled"


@dataclass(frozen=True)
class LTX2Geometry(LTX2VAEConfig):
    """The video VAE's config with the clip checks the pipeline asks of a VAE config (what the memory planner
    reads of it is the config itself)."""

    @classmethod
    def of(cls, vae: LTX2VAEConfig) -> LTX2Geometry:
        return cls(**{f.name: getattr(vae, f.name) for f in fields(vae)})

    def check_clip(self, frames: int, height: int, width: int) -> None:
        """Raise a ConfigError that says which size to use when the VAE cannot take this clip."""
        tc, sc = self.temporal_compression, self.spatial_compression
        if frames < 1 or (frames - 1) % tc:
            lo = max(1, 1 + (frames - 1) // tc * tc)
            raise ConfigError(f"frames={frames} is not 1 + {tc}k for the LTX-2 VAE; use {lo} or {lo + tc}")
        for name, v in (("height", height), ("width", width)):
            if v < sc or v % sc:
                lo = max(sc, v // sc * sc)
                raise ConfigError(f"{name}={v} is not a multiple of {sc} for the LTX-2 VAE; use {lo} or {lo + sc}")

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, t, h, w) of the latent for a clip of this size."""
        self.check_clip(frames, height, width)
        tc, sc = self.temporal_compression, self.spatial_compression
        return (self.latent_channels, 1 + (frames - 1) // tc, height // sc, width // sc)


@dataclass(frozen=True)
class LTX2Files:
    """Where each component comes from. `checkpoint`: the single file, or the split transformer; the others
    default to the checkpoint's own component (text_encoder, Gemma, has no default)."""

    checkpoint: str
    text_encoder: str | None = None
    vae: str | None = None
    text_projection: str | None = None
    upscaler: str | None = None

    def given(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class LTX2ModelConfig:
    """What the pipeline, the CLI and `aiprod info` read of an LTX-2 model, from the files' headers."""

    name: str
    transformer: LTX2TransformerConfig
    vae: LTX2Geometry
    upscaler: LTX2UpsamplerConfig | None = None
    frames: int = DEFAULT_CLIP["frames"]
    height: int = DEFAULT_CLIP["height"]
    width: int = DEFAULT_CLIP["width"]
    fps: float = DEFAULT_CLIP["fps"]
    files: LTX2Files | None = field(default=None, compare=False)
    # a distilled transformer samples its 8 fixed sigmas without guidance (LTX2Family.sampling)
    distilled: bool = False

    @property
    def stg_block(self) -> int:
        """The block whose self-attention STG skips: LTX-2's (29, or 28 for LTX-2.3), the last of a smaller model."""
        block = STG_BLOCK_2_3 if self.transformer.cross_attention_adaln else STG_BLOCK
        return min(block, self.transformer.num_layers - 1)


def is_distilled_name(path: str | os.PathLike) -> bool:
    """Whether a checkpoint's file name marks it distilled (`ltx-2-19b-distilled-fp8.safetensors`); the folder it
    sits in does not count."""
    return DISTILLED_MARK in Path(path).name.lower()


def is_ltx2_file(path: str | os.PathLike) -> bool:
    """Whether a safetensors file holds an LTX-2 component (read from its header; nothing else is read)."""
    try:
        open_ltx2(path)
    except LTX2FileError:
        return False
    return True


def _open_slot(slot: str, path: str, component: str, names: dict[str, str]) -> LTX2File:
    where = f"{names[slot]} {path}"
    try:
        file = open_ltx2(path)
    except LTX2FileError:
        keys = sorted(_keys(slot, path)[0])
        sample = ", ".join(keys[:3]) or "no tensors"
        raise LTX2FileError(f"{where} is not an LTX-2 file of that kind: it holds {len(keys)} tensors ({sample}, "
                            f"...); expected {SLOTS[slot]}") from None
    if component not in file.components:
        raise LTX2FileError(f"{where} holds the LTX-2 components {file.names}, not the {component}; expected "
                            f"{SLOTS[slot]}")
    return file


def _keys(slot: str, path: str) -> tuple[set[str], dict[str, str]]:
    check_safetensors(path, slot)
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return set(f.keys()), f.metadata() or {}


def _check_split(slot: str, path: str, marks: tuple[str, ...], names: dict[str, str]) -> dict[str, str]:
    """A split VAE or text projection file: its keys start with one of `marks` (or it is a released checkpoint
    holding that component). Returns its metadata."""
    keys, meta = _keys(slot, path)
    if not any(k.startswith(marks) for k in keys):
        sample = ", ".join(sorted(keys)[:3]) or "no tensors"
        raise LTX2FileError(f"{names[slot]} {path} holds {len(keys)} tensors ({sample}, ...) but none under "
                            f"{' / '.join(marks)}; expected {SLOTS[slot]}")
    return meta


SPLIT_MARKS = {"vae": ("encoder.", "decoder.", "vae.encoder.", "vae.decoder."),
               "text_projection": ("text_embedding_projection.",)}


def _check_gemma(path: str, names: dict[str, str]) -> None:
    p, where = Path(path), f"{names['text_encoder']} {path}"
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise LTX2FileError(f"{where} is a folder without config.json; expected {GEMMA_HINT}")
        return
    check_safetensors(p, names["text_encoder"])
    if is_ltx2_file(p):
        raise LTX2FileError(f"{where} is an LTX-2 file, not Gemma; expected {GEMMA_HINT} (the LTX-2 checkpoint goes "
                            f"in {names['checkpoint']}, a text projection file in {names['text_projection']})")
    with safe_open(str(p), framework="pt", device="cpu") as f:
        keys = set(f.keys())
    if not any(prefix + "embed_tokens.weight" in keys for prefix in LANGUAGE_MODEL_PREFIXES):
        sample = ", ".join(sorted(keys)[:3]) or "no tensors"
        raise LTX2FileError(f"{where} holds no Gemma language model ({sample}, ...); expected {GEMMA_HINT}")


def check_ltx2_files(files: LTX2Files, need_text_encoder: bool = True,
                     names: dict[str, str] | None = None) -> dict[str, LTX2File]:
    """Check from the headers that each file holds what its slot needs; returns the checkpoint (and upscaler) as
    opened LTX-2 files.

    Raises LTX2FileError naming the slot (as `names` calls it: the CLI's flags; default load_model's keywords),
    the file, what it holds and what was expected."""
    names = {**KEYWORDS, **(names or {})}
    opened = {"checkpoint": _open_slot("checkpoint", files.checkpoint, "transformer", names)}
    ckpt = opened["checkpoint"]
    if files.upscaler is not None:
        opened["upscaler"] = _open_slot("upscaler", files.upscaler, "upscaler", names)
    for slot, marks in SPLIT_MARKS.items():
        if getattr(files, slot) is not None:
            _check_split(slot, getattr(files, slot), marks, names)
    if files.vae is None and "video_vae" not in ckpt.components:
        raise LTX2FileError(f"{files.checkpoint} holds no video VAE ({ckpt.names}); give {names['vae']} <file>: "
                            f"{SLOTS['vae']}")
    if files.text_projection is None and "video_connector" not in ckpt.components:
        raise LTX2FileError(f"{files.checkpoint} holds no text connector ({ckpt.names}); give "
                            f"{names['text_projection']} <file>: {SLOTS['text_projection']}")
    if files.text_encoder is not None:
        _check_gemma(files.text_encoder, names)
    elif need_text_encoder:
        raise LTX2FileError(f"{files.checkpoint} is an LTX-2 model, which reads prompts through Gemma 3; give "
                            f"{names['text_encoder']} <{GEMMA_HINT}>")
    return opened


def read_ltx2_config(files: LTX2Files, need_text_encoder: bool = False,
                     names: dict[str, str] | None = None) -> LTX2ModelConfig:
    """The model's config from its files' headers and metadata (no weight is read); `names` as check_ltx2_files."""
    opened = check_ltx2_files(files, need_text_encoder, names)
    ckpt = opened["checkpoint"]
    if not ckpt.config:
        raise LTX2FileError(f"{files.checkpoint} holds an LTX-2 transformer but no 'config' metadata; expected the "
                            "model config that Lightricks' files carry: use the released file")
    transformer = LTX2TransformerConfig.from_metadata(ckpt.config)
    vae_path = files.vae or files.checkpoint
    vae_meta = _keys("vae", vae_path)[1] if files.vae else {"config": json.dumps(ckpt.config)}
    vae = read_vae_config(vae_meta, vae_path)
    upscaler = None
    if "upscaler" in opened:
        with safe_open(str(opened["upscaler"].path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
        if "config" in meta:
            upscaler = LTX2UpsamplerConfig.from_json(meta["config"], str(opened["upscaler"].path))
    geometry = LTX2Geometry.of(vae)
    if geometry.latent_channels != transformer.in_channels:
        raise LTX2FileError(f"vae={vae_path} has {geometry.latent_channels} latent channels but the transformer "
                            f"in {files.checkpoint} takes {transformer.in_channels}; use the VAE released with it")
    return LTX2ModelConfig(name=Path(files.checkpoint).stem, transformer=transformer, vae=geometry,
                           upscaler=upscaler, files=files, distilled=is_distilled_name(files.checkpoint))


@dataclass
class LTX2Components:
    config: LTX2ModelConfig
    transformer: LTX2VideoTransformer
    vae: LTX2VideoVAE
    text_encoder: LTX2TextEncoder | None
    upscaler: LTX2LatentUpsampler | None


def load_ltx2(files: LTX2Files, dtype: torch.dtype | None = None, vae_dtype: torch.dtype | None = None,
              require_text_encoder: bool = False) -> LTX2Components:
    """Every component from its file, on the CPU. dtype: the transformer's and upscaler's weights (None: float32;
    fp8 files are upcast), vae_dtype the VAE's (None: as dtype). Gemma and the connector take bfloat16 when dtype
    is bfloat16 (12B parameters: 24 GB instead of 48), else float32."""
    config = read_ltx2_config(files, require_text_encoder)
    dtype = dtype or torch.float32
    transformer = load_video_transformer(files.checkpoint, dtype=dtype)
    vae = load_ltx2_video_vae(files.vae or files.checkpoint, dtype=vae_dtype or dtype)
    text_encoder = None
    if files.text_encoder is not None:
        text_dtype = torch.bfloat16 if dtype == torch.bfloat16 else torch.float32
        text_encoder = load_ltx2_text_encoder(files.text_encoder, files.text_projection or files.checkpoint,
                                              dtype=text_dtype)
        _check_width(text_encoder, config, files)
    upscaler = load_ltx2_upsampler(files.upscaler, dtype=dtype) if files.upscaler else None
    if upscaler is not None and upscaler.cfg.in_channels != config.vae.latent_channels:
        raise LTX2FileError(f"upscaler={files.upscaler} takes {upscaler.cfg.in_channels} latent channels but the VAE "
                            f"has {config.vae.latent_channels}; use the upscaler released with this model")
    return LTX2Components(config, transformer, vae, text_encoder, upscaler)


def _check_width(text_encoder: nn.Module, config: LTX2ModelConfig, files: LTX2Files) -> None:
    t = config.transformer
    want = t.caption_channels if t.caption_channels is not None else t.cross_attention_dim
    if text_encoder.dim != want:
        raise LTX2FileError(f"the text connector from {files.text_projection or files.checkpoint} gives contexts "
                            f"{text_encoder.dim} wide but the transformer in {files.checkpoint} reads {want}; use the "
                            "text projection file released with this model")
