"""T5 / mT5 / umT5 encoders from a local Hugging Face folder (`TextEncoderConfig(kind="t5")`).

The folder holds `config.json`, safetensors weights (`model.safetensors` or shards with an index) and
the tokenizer (`tokenizer.json`, or `spiece.model`). Nothing is downloaded and nothing is unpickled:
pickle weights (`.bin`, `.pt`, ...) can run code when loaded, so they are refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

from .base import TextEncoder, TextEncoderError, check_width
from .tokenizer import HFTokenizer, SentencePieceTokenizer

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
ENCODER_CLASSES = {"t5": "T5EncoderModel", "mt5": "MT5EncoderModel", "umt5": "UMT5EncoderModel"}


def default_dtype(device: torch.device | str) -> torch.dtype:
    """float32 on CPU; bfloat16 on an accelerator (T5 overflows in float16, bf16 halves the memory)."""
    return torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16


def file_identity(paths: list[Path]) -> str:
    """A cheap description of weight files (absolute path, size, mtime) for `TextEncoder.key`."""
    rows = []
    for p in sorted(paths):
        st = p.stat()
        rows.append([str(p.resolve()), st.st_size, st.st_mtime_ns])
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def _from_pretrained_dtype_kwarg(dtype: torch.dtype) -> dict:
    import transformers

    # transformers 5 renamed `torch_dtype` to `dtype`; pyproject allows >= 4.44.
    major = int(transformers.__version__.split(".")[0])
    return {"dtype": dtype} if major >= 5 else {"torch_dtype": dtype}


def load_hf_t5_encoder(
    path: str | os.PathLike,
    max_length: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    expected_dim: int | None = None,
) -> TextEncoder:
    """Load a T5/mT5/umT5 encoder folder. `encode` -> hidden `[B, L, d_model]`, mask `[B, L]`.

    `expected_dim`, when given, is checked against config.json's d_model before the weights are read.
    """
    import transformers

    folder = Path(path)
    if not folder.is_dir():
        raise TextEncoderError(
            f"text encoder folder {str(folder)!r} does not exist or is not a folder; kind='t5' expects a "
            "local Hugging Face folder with config.json, *.safetensors and tokenizer files"
        )
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise TextEncoderError(
            f"{folder} has no config.json; found {sorted(p.name for p in folder.iterdir())[:12]}. "
            "Use the folder saved by save_pretrained() (config.json + model.safetensors + tokenizer)"
        )
    try:
        hf_config = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise TextEncoderError(f"{config_file} is not valid JSON ({e})") from e
    model_type = hf_config.get("model_type")
    if model_type not in ENCODER_CLASSES:
        raise TextEncoderError(
            f"{config_file} has model_type={model_type!r}; expected one of {sorted(ENCODER_CLASSES)} "
            "(a T5, mT5 or umT5 encoder)"
        )
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickled:
            raise TextEncoderError(
                f"{folder} has only pickle weights {pickled}; pickle files can run code when loaded, so "
                "only safetensors are accepted. Convert once in a trusted environment, e.g. "
                "`model.save_pretrained(folder, safe_serialization=True)`"
            )
        raise TextEncoderError(f"{folder} has no *.safetensors weights; expected model.safetensors or shards")
    check_width(str(folder), int(hf_config.get("d_model", -1)), expected_dim)

    dtype = dtype or default_dtype(device)
    cls = getattr(transformers, ENCODER_CLASSES[model_type])
    model = cls.from_pretrained(
        str(folder), local_files_only=True, use_safetensors=True, **_from_pretrained_dtype_kwarg(dtype)
    )
    model = model.to(device).eval()
    tokenizer = _folder_tokenizer(folder)
    logger.info("loaded %s from %s (d_model=%d)", cls.__name__, folder, model.config.d_model)
    source = file_identity([*weights, config_file])
    return TextEncoder(model, tokenizer, kind="t5", max_length=max_length, source_id=source)


def _folder_tokenizer(folder: Path):
    if (folder / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        return HFTokenizer(AutoTokenizer.from_pretrained(str(folder), local_files_only=True))
    if (folder / "spiece.model").is_file():
        return SentencePieceTokenizer.from_file(str(folder / "spiece.model"))
    raise TextEncoderError(
        f"{folder} has no tokenizer: expected tokenizer.json or spiece.model; found "
        f"{sorted(p.name for p in folder.iterdir())[:12]}. Save the tokenizer with save_pretrained() "
        "into the same folder"
    )
