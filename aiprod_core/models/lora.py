"""Low-rank adapters (Hu et al. 2021) for the backbone's linear layers and, optionally, the text encoder's.

Adapters live beside the model, not inside it: `apply_loras` adds `strength * alpha/rank * B(A(x))`
to a layer's output through forward hooks, so the backbone's own weights and state-dict keys never
change, several LoRAs stack, and removing them restores the model exactly. Training uses the same path.

Files use the layout ComfyUI's LoRA loader and PEFT read:
`diffusion_model.<module path>.lora_A.weight` [r, in], `.lora_B.weight` [out, r], `.alpha` []. Adapters of the
text encoder, when a LoRA has them, sit beside them under `text_encoder.<module path>`, the prefix of the text
encoder's weights in our checkpoints; only this package reads those. The text encoder that reads prompts
through them is text.lora.AdaptedTextEncoder.
"""

from __future__ import annotations

import importlib
import math
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..checkpoint import CheckpointError, read_safetensors, save_safetensors_atomic

PREFIX = "diffusion_model."
TEXT_PREFIX = "text_encoder."
DEFAULT_TARGETS = ("attn1.to_q", "attn1.to_k", "attn1.to_v", "attn1.to_out", "attn2.to_q", "attn2.to_k",
                   "attn2.to_v", "attn2.to_out", "ff.proj_in", "ff.proj_out")
# every linear layer of a T5 encoder block: self-attention and the gated feed-forward
TEXT_TARGETS = ("SelfAttention.q", "SelfAttention.k", "SelfAttention.v", "SelfAttention.o",
                "DenseReluDense.wi_0", "DenseReluDense.wi_1", "DenseReluDense.wo")


class LoRAError(CheckpointError):
    """A LoRA file that does not fit the model it is applied to."""


def parse_targets(text: str) -> tuple[str, ...]:
    """"attn2.to_k, attn2.to_v" -> ("attn2.to_k", "attn2.to_v"): a comma-separated target list, blanks dropped."""
    return tuple(t.strip() for t in text.split(",") if t.strip())


def find_targets(model: nn.Module, targets: tuple[str, ...] = DEFAULT_TARGETS) -> dict[str, nn.Linear]:
    """Linear layers whose path ends with one of `targets` (e.g. "attn1.to_q" or "ff.proj_in")."""
    found = {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets)
    }
    if not found:
        raise LoRAError(f"no linear layer matches the LoRA targets {list(targets)}; check the target names")
    return found


class LoRAAdapter(nn.Module):
    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float):
        super().__init__()
        self.lora_A = nn.Linear(in_features, rank, bias=False)
        self.lora_B = nn.Linear(rank, out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)  # the adapter starts as the identity change
        self.rank, self.alpha = rank, float(alpha)

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        a = self.lora_A.weight.to(x)  # to the input's device and dtype: the adapted layer may have moved alone
        b = self.lora_B.weight.to(x)
        return (x @ a.t()) @ b.t() * self.scale


class LoRA(nn.Module):
    """A set of adapters keyed by module path; `prefix` names the model they adapt in a file."""

    def __init__(self, adapters: dict[str, LoRAAdapter], prefix: str = PREFIX):
        super().__init__()
        self.prefix = prefix
        self.paths = sorted(adapters)
        # ModuleDict keys may not contain dots.
        self.adapters = nn.ModuleDict({p.replace(".", "/"): adapters[p] for p in self.paths})
        self.active = True  # False inside `bypassed()`: applied hooks leave the layers' outputs alone

    @contextmanager
    def bypassed(self) -> Iterator[None]:
        """Within the block, layers hooked by `apply_loras` answer as the base model (the LoRA-off prediction of
        output preservation), without removing the hooks that a checkpointed backward still needs."""
        self.active = False
        try:
            yield
        finally:
            self.active = True

    def __getitem__(self, path: str) -> LoRAAdapter:
        return self.adapters[path.replace(".", "/")]

    @classmethod
    def create(cls, model: nn.Module, rank: int = 16, alpha: float | None = None,
               targets: tuple[str, ...] = DEFAULT_TARGETS, prefix: str = PREFIX) -> LoRA:
        if rank < 1:
            raise ValueError(f"rank={rank} must be at least 1")
        layers = find_targets(model, targets)
        return cls({p: LoRAAdapter(m.in_features, m.out_features, rank, alpha or rank) for p, m in layers.items()}, prefix)

    def comfy_state_dict(self) -> dict[str, torch.Tensor]:
        out = {}
        for p in self.paths:
            a = self[p]
            out[f"{self.prefix}{p}.lora_A.weight"] = a.lora_A.weight.detach()
            out[f"{self.prefix}{p}.lora_B.weight"] = a.lora_B.weight.detach()
            out[f"{self.prefix}{p}.alpha"] = torch.tensor(a.alpha)
        return out

    @classmethod
    def from_comfy_state_dict(cls, sd: dict[str, torch.Tensor], model: nn.Module, source: str = "LoRA",
                              prefix: str = PREFIX) -> LoRA:
        """Rebuild the adapters under `prefix` from a file's tensors, checking every path and shape against `model`."""
        layers = dict(model.named_modules())
        paths = sorted({k[len(prefix):].rsplit(".lora_A.weight", 1)[0] for k in sd
                        if k.startswith(prefix) and k.endswith(".lora_A.weight")})
        if not paths:
            raise LoRAError(
                f"{source}: no '{prefix}<module>.lora_A.weight' keys; expected a LoRA in the "
                f"{prefix}*.lora_A/lora_B/alpha layout, found keys like {sorted(sd)[:3]}"
            )
        adapters = {}
        for p in paths:
            layer = layers.get(p)
            a, b = sd[f"{prefix}{p}.lora_A.weight"], sd.get(f"{prefix}{p}.lora_B.weight")
            if not isinstance(layer, nn.Linear) or b is None or a.shape[1] != layer.in_features \
                    or b.shape[0] != layer.out_features or b.shape[1] != a.shape[0]:
                want = f"[r, {layer.in_features}] / [{layer.out_features}, r]" if isinstance(layer, nn.Linear) else "no such layer"
                raise LoRAError(
                    f"{source}: adapter for {p!r} does not fit this model (expected {want}, found "
                    f"{tuple(a.shape)} / {None if b is None else tuple(b.shape)}); "
                    "the LoRA was trained for another model — load it with the model it was trained on"
                )
            rank = a.shape[0]
            alpha = float(sd[f"{prefix}{p}.alpha"]) if f"{prefix}{p}.alpha" in sd else float(rank)
            ad = LoRAAdapter(layer.in_features, layer.out_features, rank, alpha)
            ad.lora_A.weight.data.copy_(a.float())
            ad.lora_B.weight.data.copy_(b.float())
            adapters[p] = ad
        return cls(adapters, prefix)


def has_text_adapters(sd: dict[str, torch.Tensor]) -> bool:
    """Whether a LoRA file's tensors adapt the text encoder too."""
    return any(k.startswith(TEXT_PREFIX) for k in sd)


def text_lora_from(sd: dict[str, torch.Tensor], text_encoder: nn.Module, source: str = "LoRA") -> LoRA | None:
    """The text encoder's adapters of a LoRA file's tensors, or None when the LoRA adapts the backbone only."""
    if not has_text_adapters(sd):
        return None
    return LoRA.from_comfy_state_dict(sd, text_encoder, source, prefix=TEXT_PREFIX)


@contextmanager
def apply_loras(model: nn.Module, loras: list[tuple[LoRA, float]]) -> Iterator[None]:
    """Within the block, each adapted layer returns `W x + sum(strength * alpha/r * B A x)`."""
    handles = []
    try:
        for lora, strength in loras:
            if strength == 0:
                continue
            for layer, adapter in _adapted_layers(model, lora):

                def hook(_mod, args, out, adapter=adapter, strength=strength, lora=lora):
                    return out + strength * adapter.delta(args[0]) if lora.active else out

                handles.append(layer.register_forward_hook(hook))
        yield
    finally:
        for h in handles:
            h.remove()


def _adapted_layers(model: nn.Module, lora: LoRA) -> list[tuple[nn.Module, LoRAAdapter]]:
    """(layer of `model`, its adapter) for every path `lora` adapts; a path the model lacks is an error."""
    layers = dict(model.named_modules())
    missing = [p for p in lora.paths if p not in layers]
    if missing:
        raise LoRAError(f"the model has no layer {missing[0]!r} that this LoRA adapts; it belongs to another model")
    return [(layers[p], lora[p]) for p in lora.paths]


def save_lora(path: str | os.PathLike, lora: LoRA, metadata: dict[str, str] | None = None,
              text_lora: LoRA | None = None) -> None:
    """Atomic write of a LoRA (and its text encoder's adapters, if any) in the ComfyUI/PEFT layout."""
    sd = {**lora.comfy_state_dict(), **(text_lora.comfy_state_dict() if text_lora is not None else {})}
    save_safetensors_atomic(sd, path, {"format": "pt", **(metadata or {})})


def read_lora(path: str | os.PathLike, backbone: nn.Module, text_encoder: nn.Module) -> tuple[LoRA, LoRA | None]:
    """A LoRA file's backbone adapters, and its text encoder's (None when it has none)."""
    sd, _ = read_safetensors(path)
    return LoRA.from_comfy_state_dict(sd, backbone, str(path)), text_lora_from(sd, text_encoder, str(path))


def load_lora(path: str | os.PathLike, model: nn.Module) -> tuple[LoRA, dict[str, str]]:
    sd, meta = read_safetensors(path)
    return LoRA.from_comfy_state_dict(sd, model, source=str(path)), meta


_MOVED_TO_TEXT = ("AdaptedTextEncoder", "adapted_text_encoder")


def __getattr__(name: str):
    """The text encoder's adapted form moved to aiprod_core.text.lora, which builds on this module; the old names
    still answer here for one release, with a DeprecationWarning on each access (looked up when asked for, so
    this module imports nothing from text)."""
    if name in _MOVED_TO_TEXT:
        warnings.warn(f"aiprod_core.models.lora.{name} moved to aiprod_core.text.lora.{name}; import it from there",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module("aiprod_core.text.lora"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
