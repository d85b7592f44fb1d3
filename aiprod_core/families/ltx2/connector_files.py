"""The text connector's weights and config from LTX-2's files as released.

Lightricks' single files (`ltx-2-19b-dev.safetensors`, ...) keep the text path beside the transformer:
- the feature extractor's Linear as `text_embedding_projection.aggregate_embed.weight` (19B, V1) or
  `text_embedding_projection.video_aggregate_embed.{weight,bias}` (LTX-2.3, V2);
- the video connector under `model.diffusion_model.video_embeddings_connector.` (audio-video files; the audio
  connector beside it is not read) or `model.diffusion_model.embeddings_connector.` (video-only files):
  `transformer_1d_blocks.N.attn1.{to_q,to_k,to_v,to_out.0,q_norm,k_norm[,to_gate_logits]}.*`,
  `transformer_1d_blocks.N.ff.net.{0.proj,2}.*`, `learnable_registers` [128, width];
- the connector's settings in the metadata `config` JSON, section `transformer` (`connector_*`, `rope_type`,
  `frequencies_precision`, `positional_embedding_theta`, `caption_proj_before_connector`).
ComfyUI's text-projection files (the second file of its LTX-2 DualCLIPLoader) hold the same tensors as
`text_embedding_projection.weight` and `video_embeddings_connector.*`, without a config: LTX-2 19B's settings
apply (ComfyUI's comfy/text_encoders/lt.py builds the connector with them), the layer count read from the keys.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from .connector import ConnectorConfig, ConnectorConfigError, TextConnector
from .files import LTX2FileError, open_ltx2

COMFY_PROJECTION = "text_embedding_projection.weight"
COMFY_CONNECTOR = "video_embeddings_connector."
_EXPECTED = ("expected an LTX-2 checkpoint as released (text_embedding_projection.aggregate_embed.weight and "
             "model.diffusion_model.video_embeddings_connector.*, e.g. ltx-2-19b-dev.safetensors) or ComfyUI's "
             "LTX-2 text projection file (text_embedding_projection.weight and video_embeddings_connector.*)")


def _comfy_state(path: Path, dtype: torch.dtype) -> dict[str, Tensor]:
    """ComfyUI's layout -> our names (feature_extractor.*, video_connector.*)."""
    state: dict[str, Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for k in f.keys():  # noqa: SIM118
                if k == COMFY_PROJECTION:
                    state["feature_extractor.aggregate_embed.weight"] = f.get_tensor(k).to(dtype)
                elif k.startswith(COMFY_CONNECTOR):
                    state["video_connector." + k[len(COMFY_CONNECTOR):]] = f.get_tensor(k).to(dtype)
    except (SafetensorError, OSError) as e:
        raise LTX2FileError(f"{path}: could not be read ({e}); it may be truncated: download it again") from e
    return state


def _released_state(path: Path, dtype: torch.dtype) -> tuple[dict[str, Tensor], dict]:
    file = open_ltx2(path)
    if "text_projection" not in file.components or "video_connector" not in file.components:
        return {}, file.config
    state = {"feature_extractor." + k: v for k, v in file.state_dict("text_projection", dtype=dtype).items()
             if not k.startswith("audio_aggregate_embed.")}
    state.update({"video_connector." + k: v for k, v in file.state_dict("video_connector", dtype=dtype).items()})
    return state, file.config


def _config_from_keys(state: dict[str, Tensor], transformer: dict | None, gemma_dim: int) -> ConnectorConfig:
    v2 = "feature_extractor.video_aggregate_embed.weight" in state
    linear = state["feature_extractor.video_aggregate_embed.weight" if v2 else "feature_extractor.aggregate_embed.weight"]
    flat = linear.shape[1]
    if flat % gemma_dim:
        raise ConnectorConfigError(
            f"the feature extractor takes {flat} features, not a multiple of Gemma's width {gemma_dim}; the LTX-2 "
            "checkpoint and the Gemma weights do not belong together (LTX-2 takes Gemma 3 12B: 3840 x 49 = 188160)"
        )
    states = flat // gemma_dim
    registers = state.get("video_connector.learnable_registers")
    count = 0 if registers is None else int(registers.shape[0])
    if transformer is not None:
        return replace(ConnectorConfig.from_transformer_config(transformer, gemma_dim, states), registers=count)
    if v2:
        raise ConnectorConfigError("an LTX-2.3 (V2) text projection without the checkpoint's config cannot be built: "
                                   "its connector settings are only in the metadata; use the released checkpoint")
    layers = {int(m.group(1)) for k in state if (m := re.match(r"video_connector\.transformer_1d_blocks\.(\d+)\.", k))}
    gate = state.get("video_connector.transformer_1d_blocks.0.attn1.to_gate_logits.weight")
    width = linear.shape[0]
    head_dim = ConnectorConfig.head_dim  # 128, as ComfyUI builds it; the shapes do not tell the head count
    if width % head_dim:
        raise ConnectorConfigError(f"a connector of width {width} without a config: heads of {head_dim} (LTX-2's) "
                                   "do not divide it; use the released checkpoint, whose config says")
    return ConnectorConfig(gemma_dim=gemma_dim, gemma_states=states, heads=width // head_dim, head_dim=head_dim,
                           layers=len(layers), registers=count,
                           gated_attention=gate is not None)


def load_text_connector(path: str | os.PathLike, gemma_dim: int, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32) -> TextConnector:
    """LTX-2's feature extractor and video connector from a released checkpoint (or ComfyUI's text projection
    file), for a Gemma of width `gemma_dim`. fp8 weights are dequantised; everything is cast to `dtype`."""
    path = Path(path)
    try:
        state, config = _released_state(path, dtype)
    except LTX2FileError:
        state, config = {}, {}
    transformer = config.get("transformer") if config else None
    if not state:
        state = _comfy_state(path, dtype) if path.is_file() else {}
        if "feature_extractor.aggregate_embed.weight" not in state:
            raise LTX2FileError(f"{path} holds no LTX-2 text connector; {_EXPECTED}")
    has_linear = any(k.startswith("feature_extractor.") for k in state)
    if not has_linear:
        raise LTX2FileError(f"{path} has the connector but no text_embedding_projection.* Linear; {_EXPECTED}")
    cfg = _config_from_keys(state, transformer, gemma_dim)
    with torch.device("meta"):
        model = TextConnector(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise LTX2FileError(
            f"{path}: the text connector's tensors do not match its config ({cfg.layers} layers, width {cfg.width}, "
            f"{cfg.registers} registers, V{cfg.version}): missing {missing[:4]}, unexpected {unexpected[:4]}; "
            f"{_EXPECTED}"
        )
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        k, found, want = wrong[0]
        raise LTX2FileError(f"{path}: {k} has shape {found}, the config gives {want}; {_EXPECTED}")
    model.load_state_dict({k: v.to(device) for k, v in state.items()}, assign=True)
    return model.eval()
