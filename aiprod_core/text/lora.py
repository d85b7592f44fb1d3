"""The text encoder read through LoRA adapters: a LoRA file's `text_encoder.` adapters (models.lora) applied to
the prompts' encoder while it encodes."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from ..models.lora import LoRA, apply_loras
from .base import TextEncoder, WeightsHash


class AdaptedTextEncoder(TextEncoder):
    """A text encoder that reads prompts through LoRA adapters, applied by hooks during each forward.

    It shares every weight with the encoder it adapts, so adapting a umT5 costs the adapters, not a second
    encoder, and the loaded encoder answers other users unchanged between forwards. Its cache key names the
    LoRAs, so an embedding cache never hands out the base encoder's embeddings for the adapted one, or the
    reverse; it follows the adapters when they train further. Adapting an adapted encoder stacks the LoRAs
    on the first base.
    """

    def __init__(self, base: TextEncoder, loras: list[tuple[LoRA, float]]):
        if isinstance(base, AdaptedTextEncoder):
            base, loras = base._base, [*zip(base.loras, base.strengths), *loras]
        super().__init__(base.model, base.tokenizer, kind=base.kind, max_length=base.max_length)
        object.__setattr__(self, "_base", base)  # for its key; not a submodule, as its model already is one
        self.loras = nn.ModuleList([lo for lo, _ in loras])
        self.strengths = [float(s) for _, s in loras]
        # what the adapters' tensors do not hold: strengths and alphas, fixed for this encoder
        self._settings = repr([(s, [lo[p].alpha for p in lo.paths]) for lo, s in loras])
        self._adapters_hash = WeightsHash()

    @property
    def key(self) -> str:
        ident = self._settings + self._adapters_hash(self.loras)
        return f"{self._base.key}+lora:{hashlib.sha256(ident.encode()).hexdigest()[:16]}"

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with apply_loras(self, list(zip(self.loras, self.strengths))):
            return super().forward(input_ids, attention_mask)


def adapted_text_encoder(text_encoder: TextEncoder, loras: list[tuple[LoRA | None, float]]) -> TextEncoder:
    """The text encoder reading prompts through these LoRAs' text adapters (None, or strength 0: nothing to
    apply; then the encoder itself)."""
    loras = [(lo, s) for lo, s in loras if lo is not None and s != 0]
    return AdaptedTextEncoder(text_encoder, loras) if loras else text_encoder
