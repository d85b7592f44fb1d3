"""ComfyUI CONDITIONING <-> (hidden, mask).

ComfyUI's CONDITIONING is a list of `[tensor [B, L, D], {options}]` entries. We make and take exactly
one entry whose options hold `attention_mask [B, L]`. Core's CLIPTextEncode (umT5 through CLIPLoader
type `wan`) gives no mask: its states are already zero past the prompt, so all positions count.
"""

from __future__ import annotations

from typing import Any

import torch

from .base import TextEncoderError


def _check_pair(hidden: Any, mask: Any, where: str) -> None:
    if not isinstance(hidden, torch.Tensor) or hidden.ndim != 3:
        got = tuple(hidden.shape) if isinstance(hidden, torch.Tensor) else type(hidden).__name__
        raise TextEncoderError(f"{where}: text states must be a tensor [B, L, D]; got {got}")
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(hidden.shape[:2]):
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise TextEncoderError(
            f"{where}: attention_mask must be a tensor [B, L] = {list(hidden.shape[:2])} matching the "
            f"states; got {got}"
        )


def to_conditioning(hidden: torch.Tensor, mask: torch.Tensor) -> list[list[Any]]:
    """hidden `[B, L, D]`, mask `[B, L]` -> `[[hidden float32 [B, L, D], {"attention_mask": bool [B, L]}]]`."""
    _check_pair(hidden, mask, "to_conditioning")
    return [[hidden.float(), {"attention_mask": mask.bool()}]]


def from_conditioning(cond: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """CONDITIONING -> (hidden `[B, L, D]` float32, mask `[B, L]` bool).

    A missing `attention_mask` (core's CLIPTextEncode) means every position is real. Anything that is
    not one `[tensor, dict]` entry raises a TextEncoderError saying what was found.
    """
    if not isinstance(cond, (list, tuple)) or len(cond) == 0:
        raise TextEncoderError(
            f"CONDITIONING must be a non-empty list of [tensor, dict] entries; got {type(cond).__name__}"
            + (" of length 0" if isinstance(cond, (list, tuple)) else "")
            + ". Connect the output of a text-encode node"
        )
    if len(cond) != 1:
        raise TextEncoderError(
            f"CONDITIONING has {len(cond)} entries (e.g. from ConditioningCombine); AIPROD takes one. Encode "
            "one prompt, or join prompts along the tokens with ConditioningConcat"
        )
    entry = cond[0]
    if not isinstance(entry, (list, tuple)) or len(entry) != 2 or not isinstance(entry[1], dict):
        raise TextEncoderError(
            f"CONDITIONING entry must be [tensor [B, L, D], dict]; got {type(entry).__name__}"
            + (f" of length {len(entry)}" if isinstance(entry, (list, tuple)) else "")
        )
    hidden, options = entry
    if not isinstance(hidden, torch.Tensor) or hidden.ndim != 3:
        _check_pair(hidden, None, "CONDITIONING")
    mask = options.get("attention_mask")
    if mask is None:
        mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
    _check_pair(hidden, mask, "CONDITIONING")
    return hidden.float(), mask.to(hidden.device).bool()
