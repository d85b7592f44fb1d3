"""The text-encoder interface: prompts -> (hidden [B, L, D] float32, mask [B, L] bool).

Every encoder we load is a T5-family encoder from transformers (T5, mT5, umT5; ByT5-style for the
built-in byte model), so one `nn.Module` wraps them all: the subclass or loader only decides how the
model and its tokenizer are built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

Tokenizer = Callable[[list[str], int], tuple[torch.Tensor, torch.Tensor]]


class TextEncoderError(ValueError):
    """A text-encoder file, folder or state dict that cannot be used, with what was expected instead."""


def check_width(source: str, found: int, expected: int | None) -> None:
    """Refuse an encoder whose width differs from text.dim before its weights are read."""
    if expected is not None and found != expected:
        raise TextEncoderError(
            f"the text encoder {source} has width d_model={found} but text.dim={expected}; the backbone's "
            f"caption projection takes text.dim. Use an encoder of width {expected} (umT5-xxl is 4096) or "
            f"a model whose config has text.dim = backbone.text_dim = {found}"
        )


class WeightsHash:
    """sha256 of a module's state dict, for cache keys. Hashing every weight is cheap for the in-checkpoint byte
    model or a LoRA but not free, so it is redone only when a parameter was replaced or written in place
    (optimizer step, load_state_dict, .to()): both change (data_ptr, _version)."""

    def __init__(self) -> None:
        self._fingerprint: tuple | None = None
        self._digest = ""

    def __call__(self, module: nn.Module) -> str:
        fingerprint = tuple((p.data_ptr(), p._version) for p in module.parameters())
        if fingerprint != self._fingerprint:
            h = hashlib.sha256()
            for name, t in sorted(module.state_dict().items()):
                t = t.detach().to("cpu").contiguous()
                h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
            self._digest, self._fingerprint = h.hexdigest(), fingerprint
        return self._digest


SHOWN_CHARS = 100  # of the dropped text, in a warning


@dataclass(frozen=True)
class Truncation:
    """What an encoder reads of one prompt: `kept` is read, `dropped` (the rest, cut on a character boundary)
    is not. `limit` is the encoder's context in `unit`s (EOS excluded): bytes for the byte encoder, tokens
    otherwise; `used` is how many of them the whole prompt takes."""

    kept: str
    dropped: str
    limit: int
    used: int
    unit: str
    kind: str

    @property
    def cut(self) -> bool:
        return bool(self.dropped)

    def warning(self, what: str = "the prompt") -> str:
        """One line naming the limit and the text that was not read ("" when nothing was cut)."""
        if not self.cut:
            return ""
        chars = len(self.kept) + len(self.dropped)
        dropped = " ".join(self.dropped.split())  # one line, whatever newlines the prompt held
        more = ""
        if len(dropped) > SHOWN_CHARS:  # a page of text pasted as a prompt: its start says enough
            dropped, more = dropped[:SHOWN_CHARS], f" and {len(dropped) - SHOWN_CHARS} more characters"
        return (f"{what} is {self.used} {self.unit} long, but the {self.kind} text encoder reads {self.limit} "
                f"(the first {len(self.kept)} of its {chars} characters), so it ignores "
                f"{json.dumps(dropped, ensure_ascii=False)}{more}; shorten it to keep every word")


class TextEncoder(nn.Module):
    """A T5-family encoder and its tokenizer.

    `encode(prompts)` returns hidden states `[B, L, D]` float32 and a mask `[B, L]` bool on the
    encoder's device. L is the longest prompt of the batch in tokens (EOS included, at most
    `max_length`); padded positions are False in the mask and exactly zero in the hidden states, as
    ComfyUI's umT5 (`zero_out_masked`) gives them, so an embedding does not depend on how it was batched.

    `key` identifies the weights and tokenization, for caches: `source_id` (a description of the
    weights file, set by file loaders) or, when there is none, a hash of the weights themselves.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Tokenizer,
        *,
        kind: str,
        max_length: int,
        source_id: str | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.kind = kind
        self.max_length = int(max_length)
        self.source_id = source_id
        self._weights_hash = WeightsHash()
        _tie_embedding_in_state_dict(model)

    @property
    def dim(self) -> int:
        """Width D of the hidden states."""
        return int(self.model.config.d_model)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def key(self) -> str:
        """`<kind>:<hash>`; changes when the weights, max_length or compute dtype change."""
        weights = self.source_id if self.source_id is not None else self._weights_hash(self.model)
        ident = json.dumps([self.kind, weights, self.max_length, str(self.dtype)])
        return f"{self.kind}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"

    def tokenize(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts (B) -> input ids `[B, L]` long and mask `[B, L]` bool, on CPU, right-padded."""
        return self.tokenizer(prompts, self.max_length)

    @property
    def limit(self) -> int:
        """How many tokens of a prompt the encoder reads (bytes for the byte encoder): max_length less EOS."""
        return self.max_length - 1

    def count_tokens(self, prompt: str) -> int:
        """Tokens (bytes for the byte encoder) of `prompt` without the context limit, EOS excluded."""
        _, mask = self.tokenizer([prompt], 1 << 30)
        return int(mask.sum()) - 1

    def truncation(self, prompt: str) -> Truncation:
        """What `encode([prompt])` reads of the prompt and what it cuts off.

        The cut is placed after the longest run of whole characters that fits in `limit` tokens (a byte
        sequence is never split inside a UTF-8 character; a subword tokenizer is asked about prefixes, so the
        place is exact for bytes and within a word for subwords).
        """
        used = self.count_tokens(prompt)
        unit = "bytes" if self.kind == "byte" else "tokens"
        if used <= self.limit:
            return Truncation(prompt, "", self.limit, used, unit, self.kind)
        lo, hi = 0, len(prompt)  # the longest prefix that fits: lo fits, hi does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.count_tokens(prompt[:mid]) <= self.limit:
                lo = mid
            else:
                hi = mid
        return Truncation(prompt[:lo], prompt[lo:], self.limit, used, unit, self.kind)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input ids `[B, L]`, mask `[B, L]` -> hidden `[B, L, D]` float32, zero where the mask is False.

        Differentiable, for training the byte encoder jointly; `encode` is the inference entry.
        """
        out = self.model(input_ids=input_ids, attention_mask=attention_mask.long())
        out = getattr(out, "last_hidden_state", out)  # transformers' encoders wrap it; the byte model's does not
        return out.float().masked_fill(~attention_mask.bool()[..., None], 0.0)

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts (B) -> hidden `[B, L, D]` float32 and mask `[B, L]` bool, on the encoder's device."""
        ids, mask = self.tokenize(prompts)
        device = self.device
        ids, mask = ids.to(device), mask.to(device)
        return self(ids, mask), mask

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, dim={self.dim}, max_length={self.max_length}"


def _tie_embedding_in_state_dict(model: nn.Module) -> None:
    """Store T5's tied input embedding once: `shared.weight` is also `encoder.embed_tokens.weight`.

    safetensors refuses two names for one storage, and named_parameters() already lists it once, so
    state_dict() drops the alias and load_state_dict() restores it; a dict that has it still loads.
    """
    shared = getattr(model, "shared", None)
    embed = getattr(getattr(model, "encoder", None), "embed_tokens", None)
    if shared is None or embed is None or embed.weight is not shared.weight or getattr(model, "_aiprod_tied", False):
        return  # (an encoder that shares another's model finds the hooks already there)
    model._aiprod_tied = True
    model.register_state_dict_post_hook(_drop_tied_embedding)
    model.register_load_state_dict_pre_hook(_restore_tied_embedding)


def _drop_tied_embedding(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    state_dict.pop(prefix + "encoder.embed_tokens.weight", None)


def _restore_tied_embedding(
    module: nn.Module,
    state_dict: dict,
    prefix: str,
    local_metadata: dict,
    strict: bool,
    missing_keys: list,
    unexpected_keys: list,
    error_msgs: list,
) -> None:
    alias, shared = prefix + "encoder.embed_tokens.weight", prefix + "shared.weight"
    if alias not in state_dict and shared in state_dict:
        state_dict[alias] = state_dict[shared]
