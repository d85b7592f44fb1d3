"""Prompt-embedding cache, so a large encoder need not stay loaded (or even be loaded) to re-run a prompt.

An entry is keyed by sha256 of (encoder.key, prompt) and holds that prompt's states over its real
tokens only, `[L_i, D]` float32 on CPU; a batch is re-padded on the way out. Entries live in an
in-memory LRU and, with `directory`, as one safetensors file each (written to a temp file, then
os.replace'd, so a crash never leaves a half-written entry under its final name; with the umask's mode).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import OrderedDict
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..outputs import atomic_output
from .base import TextEncoder
from .tokenizer import check_prompts

logger = logging.getLogger(__name__)


def cache_key(encoder_key: str, prompt: str) -> str:
    """sha256 hex of (encoder key, prompt); JSON keeps the pair unambiguous."""
    return hashlib.sha256(json.dumps([encoder_key, prompt], ensure_ascii=False).encode("utf-8")).hexdigest()


class EmbeddingCache:
    """LRU of prompt embeddings `[L, D]`, optionally backed by `<directory>/<sha256>.safetensors`.

    `max_items` bounds the in-memory entries (0 keeps none in memory); the disk holds every entry.
    """

    def __init__(self, max_items: int = 256, directory: str | os.PathLike | None = None) -> None:
        if not isinstance(max_items, int) or max_items < 0:
            raise ValueError(f"max_items={max_items!r} must be an integer >= 0 (0: disk only)")
        self.max_items = max_items
        self.directory = Path(directory) if directory is not None else None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._items: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def _path(self, key: str) -> Path:
        return Path(self.directory or ".") / f"{key}.safetensors"

    def get(self, encoder_key: str, prompt: str) -> torch.Tensor | None:
        """The cached states `[L, D]` of `prompt` under `encoder_key`, or None."""
        key = cache_key(encoder_key, prompt)
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]
        if self.directory is not None and self._path(key).is_file():
            try:
                hidden = load_file(str(self._path(key)))["hidden"]
            except Exception as e:  # a truncated or foreign file: recompute and overwrite it
                logger.warning("embedding cache: ignoring unreadable %s (%s)", self._path(key), e)
            else:
                self._remember(key, hidden)
                self.hits += 1
                return hidden
        self.misses += 1
        return None

    def put(self, encoder_key: str, prompt: str, hidden: torch.Tensor) -> None:
        """Store the states `[L, D]` of `prompt` (real tokens only)."""
        if hidden.ndim != 2:
            raise ValueError(
                f"EmbeddingCache.put takes one prompt's states [L, D]; got {tuple(hidden.shape)}"
            )
        hidden = hidden.detach().to("cpu", torch.float32).contiguous()
        key = cache_key(encoder_key, prompt)
        self._remember(key, hidden)
        if self.directory is not None:
            with atomic_output(self._path(key)) as tmp:
                save_file({"hidden": hidden}, tmp, metadata={"encoder_key": encoder_key})

    def _remember(self, key: str, hidden: torch.Tensor) -> None:
        if self.max_items == 0:
            return
        self._items[key] = hidden
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget the in-memory entries (files on disk stay)."""
        self._items.clear()


def encode_cached(
    encoder: TextEncoder, prompts: list[str], cache: EmbeddingCache
) -> tuple[torch.Tensor, torch.Tensor]:
    """`encoder.encode(prompts)` through `cache`: hidden `[B, L, D]` float32, mask `[B, L]` bool.

    Only prompts missing from the cache run through the encoder (once each, in one batch). The result
    is padded to this batch's longest prompt with zeros, as `encode` pads, on the encoder's device.
    """
    check_prompts(prompts)
    key = encoder.key
    found = {p: cache.get(key, p) for p in dict.fromkeys(prompts)}
    todo = [p for p, h in found.items() if h is None]
    if todo:
        hidden, mask = encoder.encode(todo)
        for i, p in enumerate(todo):
            states = hidden[i, : int(mask[i].sum())]
            cache.put(key, p, states)
            found[p] = states.detach().to("cpu", torch.float32)
    rows = [found[p] for p in prompts]
    length = max(r.shape[0] for r in rows)
    out = torch.zeros(len(rows), length, rows[0].shape[1])
    mask = torch.zeros(len(rows), length, dtype=torch.bool)
    for i, r in enumerate(rows):
        out[i, : r.shape[0]] = r
        mask[i, : r.shape[0]] = True
    device = encoder.device
    return out.to(device), mask.to(device)
