"""What travels on the pack's typed sockets."""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def with_lora(self, lora: LoRA, strength: float, name: str) -> ModelPatch:
        return ModelPatch(self.backbone, self.config, self.source, (*self.loras, (lora, strength, name)))
