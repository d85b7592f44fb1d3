"""What travels on the pack's typed sockets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from aiprod_core.config import ModelConfig
from aiprod_core.models.backbone import HybridBackbone
from aiprod_core.models.lora import LoRA


@dataclass(frozen=True)
class ModelPatch:
    """AIPROD_MODEL: a backbone and the LoRAs to apply while sampling (the backbone itself is never
    changed, so one loaded model serves every branch of a workflow)."""

    backbone: HybridBackbone
    config: ModelConfig
    source: str
    loras: tuple[tuple[LoRA, float, str], ...] = field(default_factory=tuple)  # (adapters, strength, name)
    preview: tuple[torch.Tensor, torch.Tensor] | None = None  # latent-to-RGB factors [C,3] and bias [3]

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
