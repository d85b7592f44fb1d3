"""LTX-2 LoRA files, read in the layouts they are published in and applied to our video transformer.

Published layout (Lightricks' ltx-trainer saves PEFT's state dict under `diffusion_model.`, the names ComfyUI's
LoRA loader reads; Lightricks' own loader strips that prefix):
    diffusion_model.<module path>.lora_A.weight   [r, in]
    diffusion_model.<module path>.lora_B.weight   [out, r]
    diffusion_model.<module path>.alpha           []  (optional; PEFT's state dict leaves it out)
The module paths are the released transformer's, which ours keeps: `transformer_blocks.N.attn1.to_q` (`to_k`,
`to_v`, `to_out.0`; `attn2.*` the text cross-attention), `transformer_blocks.N.ff.net.0.proj`, `ff.net.2`, and
top-level layers such as `patchify_proj` or `adaln_single.linear`. The same pairs are read under the other names
ComfyUI accepts: `lora_down`/`lora_up`, kohya's `lora_unet_<path, dots as underscores>`, and the `transformer.`,
`model.diffusion_model.` or no prefix.

Scale: Lightricks' loader fuses `W + strength * B A` and ignores alpha; ComfyUI scales by alpha/rank when `.alpha`
is present. models.lora does the latter, which is the former for the files ltx-trainer writes (no alpha).

Adapters of the audio stream and of the audio<->video attention (`audio_attn1`, `audio_to_video_attn`, ...) adapt
layers a video-only call never runs: they are left out and logged. Any other key that names no layer of the
model is an error, since applying part of a LoRA would silently give another result.
"""

from __future__ import annotations

import logging
import os
import re

import torch
from torch import nn

from ...checkpoint import read_safetensors
from ...models.lora import DEFAULT_TARGETS, PREFIX, LoRA, LoRAError
from .transformer import LTX2VideoTransformer, is_audio_key

logger = logging.getLogger(__name__)

# Prefixes a module path may carry, longest first: single file, ComfyUI / ltx-trainer, diffusers, PEFT.
_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "transformer.", "base_model.model.")
_KOHYA = "lora_unet_"
# Key suffix -> the name models.lora reads.
_PARTS = {".lora_A.weight": "lora_A.weight", ".lora_down.weight": "lora_A.weight",
          ".lora_B.weight": "lora_B.weight", ".lora_up.weight": "lora_B.weight", ".alpha": "alpha"}
EXAMPLE_KEY = "diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight"
# AIPROD's LoRA target names -> the layers that do the same job here: the attention output is a Sequential's
# first layer, and the MLP's layers have diffusers' names. Other names are matched as given.
_TARGET_NAMES = {"attn1.to_out": "attn1.to_out.0", "attn2.to_out": "attn2.to_out.0", "ff.proj_in": "ff.net.0.proj",
                 "ff.proj_out": "ff.net.2"}


def ltx2_targets(targets: tuple[str, ...]) -> tuple[str, ...]:
    """LoRA targets for the LTX-2 transformer: AIPROD's names translated (so one default serves both families),
    the rest as given (e.g. ltx-trainer's `to_q`, `to_out.0`)."""
    return tuple(_TARGET_NAMES.get(t, t) for t in targets)


DEFAULT_LTX2_TARGETS = ltx2_targets(DEFAULT_TARGETS)


def _module_path(name: str, kohya: dict[str, str]) -> str:
    """The module path a LoRA key's stem names (prefix removed; kohya's underscores resolved on our layers)."""
    if name.startswith(_KOHYA):
        flat = name[len(_KOHYA):]
        # a layer the model lacks stays underscored, with its block index recovered for the audio check
        return kohya.get(flat, re.sub(r"^transformer_blocks_(\d+)_", r"transformer_blocks.\1.", flat))
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _is_audio(path: str) -> bool:
    # an unresolved kohya name has underscores where `video_to_audio_attn.` ends with a dot
    return is_audio_key(path) or is_audio_key(path.replace("video_to_audio_attn_", "video_to_audio_attn.", 1))


def ltx2_lora_from_state_dict(sd: dict[str, torch.Tensor], transformer: LTX2VideoTransformer,
                              source: str = "LoRA") -> LoRA:
    """The adapters of a LoRA's tensors (any layout above) for `transformer`, checked against its layers."""
    linear = {name for name, m in transformer.named_modules() if isinstance(m, nn.Linear)}
    kohya = {name.replace(".", "_"): name for name in linear}
    tensors: dict[str, torch.Tensor] = {}
    audio, unknown = set(), []
    for key, value in sd.items():
        suffix = next((s for s in _PARTS if key.endswith(s)), None)
        path = None if suffix is None else _module_path(key[: -len(suffix)], kohya)
        if path in linear:
            name = f"{PREFIX}{path}.{_PARTS[suffix]}"
            if name in tensors:
                raise LoRAError(f"{source}: two keys adapt {path!r} (the second is {key!r}); expected one "
                                "lora_A/lora_B pair per layer: the file mixes two LoRAs or two layouts")
            tensors[name] = value
        elif path is not None and _is_audio(path):
            audio.add(path)
        else:
            unknown.append(key)
    c = transformer.cfg
    if unknown:
        raise LoRAError(
            f"{source}: {len(unknown)} of its {len(sd)} keys name no layer of this LTX-2 video transformer "
            f"({c.num_layers} blocks, width {c.width}), e.g. {sorted(unknown)[:3]}; expected LoRA keys like "
            f"{EXAMPLE_KEY!r} (Lightricks' and ComfyUI's layout): use a LoRA trained for this LTX-2 model"
        )
    if not tensors:
        raise LoRAError(
            f"{source}: its {len(audio)} adapters are all in LTX-2's audio stream, which the video-only model "
            "never runs; it would change nothing: use a LoRA that adapts the video stream"
        )
    if audio:
        logger.info("%s: %d adapters of the audio stream left out (the video-only model never runs them)",
                    source, len(audio))
    return LoRA.from_comfy_state_dict(tensors, transformer, source)


def read_ltx2_lora(path: str | os.PathLike, transformer: LTX2VideoTransformer) -> LoRA:
    """A LoRA file in the published LTX-2 layout, as adapters for `transformer` (apply them with
    models.lora.apply_loras, unmerged, or fuse them with `fuse_loras`)."""
    sd, _ = read_safetensors(path)
    return ltx2_lora_from_state_dict(sd, transformer, str(path))


@torch.no_grad()
def fuse_loras(transformer: nn.Module, loras: list[tuple[LoRA, float]]) -> None:
    """Add `strength * alpha/r * B A` to each adapted layer's weight, in place and in float32 before rounding to
    the weight's dtype: one matmul per layer instead of two small ones per call, but the model's weights change
    (load the file again to undo). Unmerged adapters (models.lora.apply_loras) give the same velocity."""
    layers = dict(transformer.named_modules())
    for lora, strength in loras:
        missing = [p for p in lora.paths if not isinstance(layers.get(p), nn.Linear)]
        if missing:
            raise LoRAError(f"the model has no linear layer {missing[0]!r} that this LoRA adapts; read the LoRA "
                            "for this model (read_ltx2_lora) before fusing it")
        for path in lora.paths:
            adapter, weight = lora[path], layers[path].weight
            delta = adapter.lora_B.weight.float() @ adapter.lora_A.weight.float() * (strength * adapter.scale)
            weight.copy_((weight.float() + delta.to(weight.device)).to(weight.dtype))
