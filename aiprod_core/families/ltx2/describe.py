"""What an LTX-2 model is made of, read from its files' headers: parameter counts per component (the audio
stream's counted apart, as it is never loaded), blocks, widths and the dtype the weights are stored in."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from safetensors import safe_open

from .files import LTX2File, open_ltx2
from .gemma import language_model_prefix
from .model import LTX2ModelConfig
from .transformer import is_audio_key

# safetensors' dtype names -> the names users know the files by
SCALE_SUFFIXES = (".weight_scale", ".scale_weight", ".input_scale", ".scale_input", ".comfy_quant")
DTYPE_NAMES = {"F8_E4M3": "fp8", "F8_E5M2": "fp8 (e5m2)", "BF16": "bf16", "F16": "fp16", "F32": "fp32", "F64": "fp64"}


def _tensors(file: LTX2File, component: str) -> dict[str, tuple[int, str]]:
    """key (prefix stripped) -> (elements, dtype name) for one component, from the header."""
    out = {}
    with safe_open(str(file.path), framework="pt", device="cpu") as f:
        for key, stored in file.components.get(component, {}).items():
            s = f.get_slice(stored)
            out[key] = (math.prod(s.get_shape()), DTYPE_NAMES.get(s.get_dtype(), s.get_dtype().lower()))
    return out


def _file_tensors(path: str) -> dict[str, tuple[int, str]]:
    """Every tensor of a split file (one component's, unprefixed), quantization scales left out."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return {k: (math.prod(f.get_slice(k).get_shape()), DTYPE_NAMES.get(f.get_slice(k).get_dtype(), "-"))
                for k in f.keys() if not k.endswith(SCALE_SUFFIXES)}  # noqa: SIM118


def _gemma_tensors(path: str) -> dict[str, tuple[int, str]]:
    """Gemma's language model tensors (a single file, or a folder's shards), its vision tower left out."""
    files = sorted(Path(path).glob("*.safetensors")) if Path(path).is_dir() else [Path(path)]
    found = {}
    for file in files:
        found.update({f"{file}:{k}": v for k, v in _file_tensors(str(file)).items()})
    prefix = language_model_prefix({k.split(":", 1)[1] for k in found}, str(path))
    return {k: v for k, v in found.items() if k.split(":", 1)[1].startswith(prefix)}


def _summary(tensors: dict[str, tuple[int, str]]) -> dict:
    """Parameters and the storage dtype: the one most of them are in (fp8 files keep norms and biases wider)."""
    by_dtype: Counter[str] = Counter()
    for n, dtype in tensors.values():
        by_dtype[dtype] += n
    return {"params": sum(by_dtype.values()), "dtype": by_dtype.most_common(1)[0][0] if by_dtype else "-"}


def describe_ltx2(config: LTX2ModelConfig, frames: int | None = None, height: int | None = None,
                  width: int | None = None) -> dict:
    """A JSON-able summary in the form of `aiprod_core.info.summarize`, with `family`, the components present in
    each file, and the audio parameters that are not loaded."""
    files = config.files
    ckpt = open_ltx2(files.checkpoint)
    t = config.transformer
    weights = _tensors(ckpt, "transformer")
    video = {k: v for k, v in weights.items() if not is_audio_key(k)}
    audio = {k: v for k, v in weights.items() if is_audio_key(k)}
    components = {"transformer": {**_summary(video), "blocks": t.num_layers, "width": t.width,
                                  "heads": t.num_attention_heads, "head_dim": t.attention_head_dim,
                                  "audio_params_skipped": _summary(audio)["params"]}}
    if t.pattern is not None:  # an AIPROD hybrid of LTX-2 (aiprod hybridize)
        components["transformer"]["pattern"] = t.pattern
    if files.text_projection:  # ComfyUI's file holds the audio connector too: the video one is what is read
        connector = {k: v for k, v in _file_tensors(files.text_projection).items() if not k.startswith("audio_")}
    else:
        connector = {**_tensors(ckpt, "video_connector"), **_tensors(ckpt, "text_projection")}
    components["text_connector"] = {**_summary(connector), "file": files.text_projection or files.checkpoint}
    vae = _file_tensors(files.vae) if files.vae else _tensors(ckpt, "video_vae")
    vae = {k: v for k, v in vae.items() if not k.startswith("per_channel_statistics.")}  # statistics, not weights
    components["vae"] = {**_summary(vae), "file": files.vae or files.checkpoint,
                         "spatial_compression": config.vae.spatial_compression,
                         "temporal_compression": config.vae.temporal_compression,
                         "latent_channels": config.vae.latent_channels}
    if files.upscaler:
        up = config.upscaler
        components["upscaler"] = {**_summary(_tensors(open_ltx2(files.upscaler), "upscaler")),
                                  "mid_channels": up.mid_channels if up else "-",
                                  "scale": up.spatial_scale if up else "-"}
    if files.text_encoder:
        components["text_encoder"] = {**_summary(_gemma_tensors(files.text_encoder)), "gemma": files.text_encoder}
    else:
        components["text_encoder"] = {"params": 0, "gemma": "not given (needed to generate)"}
    frames, height, width = frames or config.frames, height or config.height, width or config.width
    latent = config.vae.latent_shape(frames, height, width)
    skipped = {name: sum(n for n, _ in _tensors(ckpt, name).values())
               for name in ("audio_connector", "audio_vae", "vocoder") if name in ckpt.components}
    return {
        "name": config.name,
        "family": "ltx2",
        "source": str(files.checkpoint),
        "file_components": ckpt.names,
        "audio_params_skipped": components["transformer"]["audio_params_skipped"] + sum(skipped.values()),
        "components": components,
        "total_params": sum(c["params"] for c in components.values()),
        "distilled": config.distilled,  # generate's defaults: its 8 distilled sigmas, no guidance
        "clip": {"frames": frames, "height": height, "width": width, "fps": config.fps, "latent_shape": list(latent),
                 "tokens": latent[1] * latent[2] * latent[3]},
    }
