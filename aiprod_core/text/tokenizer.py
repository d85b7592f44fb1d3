"""Tokenizer adapters: one call turns a batch of prompts into right-padded ids and a mask.

Three backends cover every encoder we load:
- `ByteTokenizer`: ByT5's bytes, for the built-in byte encoder (no vocabulary, no transformers import).
- `HFTokenizer` wraps a transformers tokenizer (a `tokenizer.json` folder).
- `SentencePieceTokenizer` drives a `.model` proto with the `sentencepiece` library directly, as ComfyUI
  does for the `spiece_model` tensor inside its umT5 files. Converting a proto to a transformers
  tokenizer needs `protobuf`, which is not a dependency of this package, so we avoid that path.
"""

from __future__ import annotations

import torch

from .base import TextEncoderError


def check_prompts(prompts: list[str]) -> None:
    """Refuse a bare str (a common slip: it would encode each character) and an empty batch."""
    if isinstance(prompts, str):
        raise TypeError(
            f"prompts is a single str ({prompts[:40]!r}...); pass a list of prompts, e.g. [prompt]"
        )
    if len(prompts) == 0:
        raise ValueError("prompts is empty; pass at least one prompt (an empty string is a valid prompt)")
    bad = [type(p).__name__ for p in prompts if not isinstance(p, str)]
    if bad:
        raise TypeError(f"prompts must all be str; found {sorted(set(bad))}")


def _padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, : len(r)] = True
    return ids, mask


class ByteTokenizer:
    """ByT5's tokenization (Xue et al. 2022): UTF-8 byte b is id b + 3 after <pad> 0, </s> 1, <unk> 2; EOS ends
    each prompt (a long one is cut to max_length - 1 bytes first, as transformers' truncation does)."""

    pad_id, eos_id, offset = 0, 1, 3
    vocab_size = 384  # 3 specials + 256 bytes + 125 sentinel ids, as transformers' ByT5Tokenizer

    def __call__(self, prompts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        check_prompts(prompts)
        rows = [[b + self.offset for b in p.encode("utf-8")[: max_length - 1]] + [self.eos_id] for p in prompts]
        return _padded(rows, self.pad_id)


class HFTokenizer:
    """A transformers tokenizer that appends EOS (T5 family): prompts -> (ids [B, L] long, mask [B, L] bool)."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        # Right padding: T5 uses relative positions, but the mask contract says real tokens come first.
        self.tokenizer.padding_side = "right"
        if self.tokenizer.pad_token_id is None:
            raise TextEncoderError(
                f"tokenizer {type(tokenizer).__name__} has no pad token; T5-family tokenizers use <pad> = 0. "
                "Check tokenizer_config.json / special_tokens_map.json in the model folder"
            )

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def __call__(self, prompts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        check_prompts(prompts)
        enc = self.tokenizer(
            list(prompts), padding="longest", truncation=True, max_length=max_length, return_tensors="pt"
        )
        return enc["input_ids"].long(), enc["attention_mask"].bool()


class SentencePieceTokenizer:
    """A sentencepiece proto used as T5 does: pieces, then EOS; pad with the proto's pad id (0 in T5)."""

    def __init__(self, model_proto: bytes, source: str = "sentencepiece model") -> None:
        import sentencepiece

        try:
            self.sp = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
        except Exception as e:  # sentencepiece raises RuntimeError/OSError with terse messages
            raise TextEncoderError(
                f"{source} is not a valid sentencepiece model ({e}); expected the bytes of a .model file "
                "(ComfyUI stores them as the uint8 tensor 'spiece_model')"
            ) from e
        self.eos_id = self.sp.eos_id()
        if self.eos_id < 0:
            raise TextEncoderError(
                f"{source} defines no EOS piece; a T5 tokenizer needs </s> (id 1 in T5's vocabulary)"
            )
        # A proto trained without a pad piece still pads with 0, as T5 does; the mask hides it anyway.
        self.pad_id = max(self.sp.pad_id(), 0)

    @classmethod
    def from_file(cls, path: str) -> SentencePieceTokenizer:
        with open(path, "rb") as f:
            return cls(f.read(), source=path)

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def __call__(self, prompts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        check_prompts(prompts)
        # Truncate before EOS so a long prompt still ends with EOS, as HF's truncation does.
        return _padded([[*ids[: max_length - 1], self.eos_id] for ids in self.sp.encode(list(prompts))], self.pad_id)
