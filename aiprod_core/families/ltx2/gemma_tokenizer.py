"""LTX-2's tokenization of a prompt for Gemma 3.

Lightricks' `LTXVGemmaTokenizer` (ltx_core text_encoders/gemma/tokenizer.py) strips the prompt of surrounding
whitespace and tokenizes it as it is: no chat template (that is used only to enhance prompts), `<bos>` first,
no `<eos>`, cut at 1024 tokens, left-padded with `<pad>` to 1024. We pad a batch to its longest prompt
instead: Gemma is causal and its RoPE relative, so the real tokens' states do not depend on the padding in
front of them, and the connector fills the context to its full length with registers either way.

Two backends give the same ids: a transformers tokenizer from a Hugging Face folder (tokenizer.json, as
ltx-core loads it), and sentencepiece driving the `.model` bytes ComfyUI embeds as `spiece_model` (ComfyUI's
`SPieceTokenizer` with add_bos, no eos).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ...checkpoint import CheckpointError
from ...text.tokenizer import check_prompts

MAX_LENGTH = 1024  # tokens LTX-2 reads of a prompt, <bos> included


class GemmaTokenizerError(CheckpointError):
    """A Gemma tokenizer that cannot be used, with what was expected instead."""


class GemmaPromptTokenizer:
    """prompts -> ids [B, T] long and mask [B, T] bool, left-padded; each row `<bos>` + the stripped prompt's
    pieces, at most `max_length` tokens."""

    def __init__(self, encode: Callable[[list[str], int], list[list[int]]], pad_id: int, vocab_size: int,
                 source: str) -> None:
        self._encode = encode  # (stripped prompts, max_length) -> ids with <bos>, truncated
        self.pad_id = int(pad_id)
        self.vocab_size = int(vocab_size)
        self.source = source

    def rows(self, prompts: list[str], max_length: int = MAX_LENGTH) -> list[list[int]]:
        check_prompts(prompts)
        return self._encode([p.strip() for p in prompts], max_length)

    def __call__(self, prompts: list[str], max_length: int = MAX_LENGTH) -> tuple[Tensor, Tensor]:
        rows = self.rows(prompts, max_length)
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.bool)
        for i, r in enumerate(rows):
            if r:
                ids[i, length - len(r):] = torch.tensor(r, dtype=torch.long)
                mask[i, length - len(r):] = True
        return ids, mask

    def count_tokens(self, prompt: str) -> int:
        """Tokens of the stripped prompt with `<bos>`, before any cut."""
        return len(self.rows([prompt], 1 << 30)[0])


def hf_tokenizer(tokenizer, source: str) -> GemmaPromptTokenizer:
    """Wrap a transformers tokenizer; it adds `<bos>` itself, as ltx-core relies on."""
    if tokenizer.pad_token_id is None:  # ltx-core pads with <eos> then; Gemma's tokenizer has <pad> = 0
        tokenizer.pad_token = tokenizer.eos_token

    def encode(prompts: list[str], max_length: int) -> list[list[int]]:
        return [list(r) for r in tokenizer(prompts, truncation=True, max_length=max_length)["input_ids"]]

    return GemmaPromptTokenizer(encode, tokenizer.pad_token_id, len(tokenizer), source)


def sentencepiece_tokenizer(model_proto: bytes, source: str) -> GemmaPromptTokenizer:
    """Drive Gemma's sentencepiece `.model` bytes directly (no protobuf needed)."""
    import sentencepiece

    try:
        sp = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
    except Exception as e:  # sentencepiece raises RuntimeError/OSError with terse messages
        raise GemmaTokenizerError(
            f"{source} is not a valid sentencepiece model ({e}); expected the bytes of Gemma's tokenizer.model "
            "(ComfyUI stores them as the uint8 tensor 'spiece_model')"
        ) from e
    bos = sp.bos_id()
    if bos < 0:
        raise GemmaTokenizerError(f"{source} defines no <bos> piece; Gemma's tokenizer has <bos> = 2")

    def encode(prompts: list[str], max_length: int) -> list[list[int]]:
        return [[bos, *ids][:max_length] for ids in sp.encode(prompts)]

    return GemmaPromptTokenizer(encode, max(sp.pad_id(), 0), sp.get_piece_size(), source)


def folder_tokenizer(folder: Path) -> GemmaPromptTokenizer:
    """The tokenizer of a Hugging Face Gemma folder: tokenizer.json through transformers (as ltx-core), else
    tokenizer.model through sentencepiece."""
    if (folder / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except Exception as e:  # transformers raises many kinds for a broken tokenizer folder
            raise GemmaTokenizerError(f"{folder}: the tokenizer could not be loaded ({e}); expected Gemma 3's "
                                      "tokenizer.json and tokenizer_config.json") from e
        return hf_tokenizer(tok, str(folder / "tokenizer.json"))
    if (folder / "tokenizer.model").is_file():
        return sentencepiece_tokenizer((folder / "tokenizer.model").read_bytes(), str(folder / "tokenizer.model"))
    raise GemmaTokenizerError(
        f"{folder} has no tokenizer: expected tokenizer.json or tokenizer.model beside config.json (as in "
        f"google/gemma-3-12b-it); found {sorted(p.name for p in folder.iterdir())[:10]}"
    )
