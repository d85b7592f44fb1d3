"""Text encoders: prompts in any language -> hidden states [B, L, D] float32 + mask [B, L] bool.

Kinds (`TextEncoderConfig.kind`): `byte` (ByT5 tokenizer + small T5 in our checkpoint), `t5` (a T5 /
mT5 / umT5 Hugging Face folder), `umt5_comfy` (ComfyUI's single-file umT5, fp16/bf16 or scaled fp8).
transformers is imported only when an encoder is built, so this package is cheap to import.
"""

from .base import TextEncoder, TextEncoderError
from .cache import EmbeddingCache, encode_cached
from .conditioning import from_conditioning, to_conditioning
from .loader import load_text_encoder
from .script import detect_script

__all__ = [
    "EmbeddingCache",
    "TextEncoder",
    "TextEncoderError",
    "detect_script",
    "encode_cached",
    "from_conditioning",
    "load_text_encoder",
    "to_conditioning",
]
