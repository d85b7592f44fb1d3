"""LTX-2's text encoder behind our interface: prompts -> the context the LTX-2 transformer cross-attends to.

prompt -> LTX-2's tokenization -> Gemma 3 (every layer's hidden states) -> feature extractor -> embeddings
connector -> context `[B, 1024, width]`, mask `[B, 1024]` (all True: registers fill what the prompt leaves).
For LTX-2 19B the width is 3840 and the transformer's own caption projection takes it to 4096; LTX-2.3 projects
before the connector, so its context is already 4096 wide.

`encode` matches `aiprod_core.text.base.TextEncoder.encode`, and `key` identifies the weights and settings, so
`aiprod_core.text.cache.encode_cached` caches contexts by prompt and Gemma need not stay loaded to re-run one
(an entry is the whole context, float32: 1024 x 3840 x 4 bytes = 15.7 MB for LTX-2 19B).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from ...text.base import TextEncoder
from ...text.t5 import file_identity
from ...text.tokenizer import check_prompts
from .connector import TextConnector
from .connector_files import load_text_connector
from .gemma import GemmaStates, load_gemma
from .gemma_tokenizer import MAX_LENGTH, GemmaPromptTokenizer


class LTX2TextEncoder(nn.Module):
    """Gemma 3 and LTX-2's text connector.

    `encode(prompts)` -> context `[B, length, width]` float32 and mask `[B, length]` bool on the encoder's
    device; `length` is `max_length` (1024) rounded up to a multiple of the connector's registers.
    """

    kind = "ltx2_gemma"

    def __init__(self, gemma: GemmaStates, tokenizer: GemmaPromptTokenizer, connector: TextConnector,
                 max_length: int = MAX_LENGTH, source_id: str | None = None) -> None:
        super().__init__()
        self.gemma = gemma
        self.tokenizer = tokenizer
        self.connector = connector
        self.max_length = int(max_length)
        self.source_id = source_id
        if tokenizer.vocab_size > gemma.model.config.vocab_size:
            raise ValueError(f"the tokenizer ({tokenizer.source}) has {tokenizer.vocab_size} pieces but Gemma's "
                             f"embedding has {gemma.model.config.vocab_size} rows; they do not belong together")

    @property
    def dim(self) -> int:
        """Width of the context."""
        return self.connector.config.width

    @property
    def length(self) -> int:
        r = self.connector.config.registers or 1
        return -(-self.max_length // r) * r

    @property
    def device(self) -> torch.device:
        return next(self.connector.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.gemma.parameters()).dtype

    @property
    def key(self) -> str:
        """Changes when the weights, the context length or the compute dtype change (for caches)."""
        ident = json.dumps([self.kind, self.source_id, self.max_length, str(self.dtype),
                            str(next(self.connector.parameters()).dtype)])
        return f"{self.kind}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"

    @property
    def limit(self) -> int:
        """Prompt tokens read, <bos> excluded."""
        return self.max_length - 1

    def count_tokens(self, prompt: str) -> int:
        """Tokens of the prompt, <bos> excluded, before any cut."""
        return self.tokenizer.count_tokens(prompt) - 1

    # what encode reads of a prompt and what it cuts off: the same search as our other encoders
    truncation = TextEncoder.truncation

    def hidden_states(self, prompts: list[str]) -> tuple[tuple[Tensor, ...], Tensor]:
        """Gemma's num_layers + 1 hidden states, each [B, T, D], and the mask [B, T] (left-padded)."""
        ids, mask = self.tokenizer(prompts, self.max_length)
        device = next(self.gemma.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        return self.gemma(ids, mask), mask

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[Tensor, Tensor]:
        """prompts (B) -> context [B, length, width] float32, mask [B, length] bool."""
        check_prompts(prompts)
        states, mask = self.hidden_states(prompts)
        dtype = next(self.connector.parameters()).dtype
        device = self.device
        states = tuple(s.to(device=device, dtype=dtype) for s in states)
        context, out_mask = self.connector(states, mask.to(device), self.length)
        return context.float(), out_mask


def load_ltx2_text_encoder(gemma_path: str | os.PathLike, checkpoint_path: str | os.PathLike,
                           device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
                           max_length: int = MAX_LENGTH) -> LTX2TextEncoder:
    """Gemma 3 from `gemma_path` (Hugging Face folder or ComfyUI single file) and the text connector from the
    LTX-2 checkpoint `checkpoint_path` (or ComfyUI's text projection file). dtype None: float32 on CPU,
    bfloat16 elsewhere, for both."""
    dtype = dtype or (torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16)
    gemma, tokenizer, files = load_gemma(gemma_path, device=device, dtype=dtype)
    connector = load_text_connector(checkpoint_path, gemma.dim, device=device, dtype=dtype)
    if connector.config.gemma_states != gemma.num_states:
        raise ValueError(
            f"the LTX-2 text connector in {checkpoint_path} takes {connector.config.gemma_states} hidden states but "
            f"the Gemma at {gemma_path} gives {gemma.num_states} ({gemma.num_states - 1} layers + embeddings); LTX-2 "
            "takes Gemma 3 12B (48 layers)"
        )
    source = file_identity([*files, *_config_files(gemma_path), Path(checkpoint_path)])
    return LTX2TextEncoder(gemma, tokenizer, connector, max_length=max_length, source_id=source)


def _config_files(gemma_path: str | os.PathLike) -> list[Path]:
    """A Gemma folder's config and tokenizer files, which decide its output as much as its weights."""
    folder = Path(gemma_path)
    if not folder.is_dir():
        return []
    return [p for p in (folder / "config.json", folder / "tokenizer.json", folder / "tokenizer.model") if p.is_file()]
