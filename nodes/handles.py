"""What travels on the pack's typed sockets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from aiprod_core.config import ModelConfig
from aiprod_core.model import AIPROD, ModelFamily
from aiprod_core.models.lora import LoRA


@dataclass(frozen=True)
class ModelPatch:
    """AIPROD_MODEL: a backbone and the LoRAs to apply while sampling (the backbone itself is never
    changed, so one loaded model serves every branch of a workflow). The backbone is AIPROD's hybrid one or, with
    an LTX-2 `config` and `family`, LTX-2's transformer; the family says how it samples."""

    backbone: torch.nn.Module
    config: ModelConfig  # or families.ltx2.model.LTX2ModelConfig
    source: str
    loras: tuple[tuple[LoRA, float, str], ...] = field(default_factory=tuple)  # (adapters, strength, name)
    preview: tuple[torch.Tensor, torch.Tensor] | None = None  # latent-to-RGB factors [C,3] and bias [3]
    family: ModelFamily = AIPROD
    stg: float = 0.0  # spatio-temporal guidance scale while sampling (LTX-2 only; AIPROD Spatio-Temporal Guidance)

    @property
    def in_channels(self) -> int:
        """The latent channels the backbone takes."""
        c = self.config
        return c.backbone.in_channels if hasattr(c, "backbone") else c.transformer.in_channels

    @property
    def text_dim(self) -> int:
        """The width of the contexts the backbone reads (after LTX-2's connector, for LTX-2)."""
        c = self.config
        if hasattr(c, "backbone"):
            return c.backbone.text_dim
        t = c.transformer
        return t.caption_channels if t.caption_channels is not None else t.cross_attention_dim

    def with_lora(self, lora: LoRA, strength: float, name: str) -> ModelPatch:
        return dataclasses.replace(self, loras=(*self.loras, (lora, strength, name)))


@dataclass(frozen=True)
class Dataset:
    """AIPROD_DATASET: where training clips come from, at what size."""

    folder: str | None  # a folder or .jsonl inside ComfyUI's input directory; None = the synthetic world
    frames: int
    height: int
    width: int
    world: dict = field(default_factory=dict)  # WorldSpec fields for the synthetic world
