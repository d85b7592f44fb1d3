"""Gemma 3, the text encoder of LTX-2: its weights read into transformers' `Gemma3TextModel`, and the hidden
states of every layer.

Only the language model is built: LTX-2 encodes text alone, so the SigLIP vision tower and the multimodal
projector a Gemma 3 12B release carries are never read. Two forms are accepted:

- a Hugging Face folder (`google/gemma-3-12b-it` as released): config.json (model_type `gemma3`, whose
  `text_config` we take, or `gemma3_text`), *.safetensors and the tokenizer (tokenizer.json, or
  tokenizer.model). The language model's keys are `language_model.model.*` in Google's release,
  `model.language_model.*` when a recent transformers saved it, `model.*` for a text-only model;
- ComfyUI's single file (`gemma_3_12B_it.safetensors`, `gemma_3_12B_it_fp8_scaled.safetensors` in
  `models/text_encoders`): keys `model.embed_tokens.weight`, `model.layers.N.*`, `model.norm.weight` (with
  `vision_model.*` and `multi_modal_projector.*` beside them), the tokenizer as the uint8 tensor
  `spiece_model` (the bytes of Gemma's sentencepiece `.model`) and no config: the architecture is read from
  the tensor shapes, the rest is Gemma 3 12B's (`GEMMA3_12B`). fp8 files store linear weights as float8 with
  a float32 scale per tensor, beside a `<layer>.comfy_quant` JSON tag (current ComfyUI) or a `scaled_fp8`
  marker and `<layer>.scale_weight` (older); they are dequantised on load.
"""

from __future__ import annotations

import json
import logging
import os
import re
from contextlib import ExitStack, contextmanager
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor, nn

from ...checkpoint import CheckpointError, check_safetensors
from .gemma_tokenizer import GemmaPromptTokenizer, folder_tokenizer, sentencepiece_tokenizer

logger = logging.getLogger(__name__)

# Gemma 3 12B's text config where the tensor shapes do not tell (Lightricks' ltx_core gemma/config.py, Google's
# config.json). query_pre_attn_scalar is head_dim in the 1B, 4B and 12B models.
GEMMA3_12B: dict = {
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1_000_000.0,
    "rope_local_base_freq": 10_000.0,
    "rope_scaling": {"rope_type": "linear", "factor": 8.0},
    "sliding_window": 1024,
    "sliding_window_pattern": 6,
    "attention_bias": False,
    "final_logit_softcapping": None,
    "attn_logit_softcapping": None,
    "pad_token_id": 0,
    "eos_token_id": 1,
    "bos_token_id": 2,
}

# Where the language model sits, by layout, tried in this order (the first whose embedding exists wins).
LANGUAGE_MODEL_PREFIXES = ("language_model.model.", "model.language_model.", "model.", "")
_EMBED = "embed_tokens.weight"
_FP8 = tuple(getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, n))
_FP8_FORMATS = ("float8_e4m3fn", "float8_e5m2")
_QUANT_AUX = (".weight_scale", ".scale_weight", ".input_scale", ".scale_input", ".comfy_quant")
SPIECE_KEY = "spiece_model"

_EXPECTED = (
    "expected Gemma 3 12B as LTX-2 uses it: a Hugging Face folder (config.json, *.safetensors, tokenizer.json "
    "or tokenizer.model, e.g. google/gemma-3-12b-it) or ComfyUI's single file gemma_3_12B_it*.safetensors "
    "(keys model.embed_tokens.weight, model.layers.N.*, model.norm.weight and the tokenizer tensor 'spiece_model')"
)


class GemmaError(CheckpointError):
    """Gemma weights, config or tokenizer that cannot be used, with what was expected instead."""


# --- reading the weights -----------------------------------------------------------------------------------


def _open(path: Path):
    try:
        check_safetensors(path, "Gemma weights")
    except CheckpointError as e:
        raise GemmaError(f"{e}. {_EXPECTED}") from e
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError) as e:
        raise GemmaError(f"{path}: could not be read as safetensors ({e}); it may be truncated: copy it again") from e


def language_model_prefix(keys: set[str], where: str) -> str:
    """The prefix of the language model's keys in a file (or the union of a folder's files)."""
    for prefix in LANGUAGE_MODEL_PREFIXES:
        if prefix + _EMBED in keys and prefix + "layers.0.input_layernorm.weight" in keys:
            return prefix
    sample = ", ".join(sorted(keys)[:5]) or "no tensors"
    raise GemmaError(
        f"{where} holds no Gemma language model: no '<prefix>embed_tokens.weight' with "
        f"'<prefix>layers.0.input_layernorm.weight' for a prefix in {list(LANGUAGE_MODEL_PREFIXES)}; it holds "
        f"{len(keys)} tensors ({sample}, ...). {_EXPECTED}"
    )


def _quant_formats(f, keys: list[str], meta: dict) -> dict[str, str]:
    """layer -> quantization format, from ComfyUI's `.comfy_quant` tags or `_quantization_metadata`."""
    formats: dict[str, str] = {}
    if "_quantization_metadata" in meta:
        try:
            layers = json.loads(meta["_quantization_metadata"]).get("layers", {})
        except (ValueError, AttributeError):
            layers = {}
        for layer, conf in layers.items():
            formats[layer] = conf.get("format", "?") if isinstance(conf, dict) else str(conf)
    for k in keys:
        if k.endswith(".comfy_quant"):
            try:
                conf = json.loads(bytes(f.get_tensor(k).tolist()).decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                conf = {}
            formats[k[: -len(".comfy_quant")]] = conf.get("format", "?") if isinstance(conf, dict) else str(conf)
    return formats


def _check_quantization(f, keys: list[str], name: str) -> None:
    formats = _quant_formats(f, keys, f.metadata() or {})
    unsupported = sorted({v for v in formats.values() if v not in _FP8_FORMATS})
    if unsupported:
        raise GemmaError(
            f"{name} stores Gemma in the quantized format(s) {unsupported} (e.g. ComfyUI's "
            "gemma_3_12B_it_fp4_mixed); only float8 with a per-tensor scale is read here. Use "
            "gemma_3_12B_it.safetensors (bf16) or gemma_3_12B_it_fp8_scaled.safetensors"
        )


def _dequantised(f, key: str, keyset: set[str], dtype: torch.dtype) -> Tensor:
    """A tensor in `dtype`; a float8 one times its scale (`.weight_scale`, or `.scale_weight` in ComfyUI's
    older files; none in a plain cast), computed in float32."""
    t = f.get_tensor(key)
    if t.dtype in _FP8:
        t = t.float()
        base = key[: -len(".weight")] if key.endswith(".weight") else key
        scale = next((base + s for s in (".weight_scale", ".scale_weight") if base + s in keyset), None)
        if scale is not None:
            t = t * f.get_tensor(scale).float()
    return t.to(dtype) if t.is_floating_point() else t


def _read(files: list[Path], dtype: torch.dtype) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The language model's tensors (prefix stripped, each cast to `dtype` as it is read, so a 12B model never
    sits in memory in float32) and the other tensors that matter here (the `spiece_model`)."""
    where = str(files[0]) if len(files) == 1 else f"{files[0].parent} ({len(files)} files)"
    state: dict[str, Tensor] = {}
    extra: dict[str, Tensor] = {}
    with ExitStack() as stack:
        handles = [(p, stack.enter_context(_open(p))) for p in files]
        try:
            keys_of = {p: list(f.keys()) for p, f in handles}
            prefix = language_model_prefix({k for ks in keys_of.values() for k in ks}, where)
            for p, f in handles:
                keys = keys_of[p]
                _check_quantization(f, keys, p.name)
                keyset = set(keys)
                for k in keys:
                    if k == SPIECE_KEY or k.endswith("." + SPIECE_KEY):
                        extra[SPIECE_KEY] = f.get_tensor(k)
                        continue
                    if not k.startswith(prefix) or k.endswith(_QUANT_AUX) or k.endswith("scaled_fp8"):
                        continue  # another model's tensor (vision tower, projector) or a quantization scale
                    name = k[len(prefix):]
                    if prefix == "" and not (name.startswith(("layers.", "norm.")) or name == _EMBED):
                        continue  # an unprefixed file: the language model's names only
                    state[name] = _dequantised(f, k, keyset, dtype)
        except (SafetensorError, OSError) as e:
            raise GemmaError(f"{where}: could not be read ({e}); it may be truncated: copy it again") from e
    return state, extra


def text_config_from_shapes(state: dict[str, Tensor], where: str) -> dict:
    """Gemma 3's text config from the language model's tensor shapes; the rest is Gemma 3 12B's."""
    layers = sorted({int(m.group(1)) for k in state if (m := re.match(r"layers\.(\d+)\.", k))})
    if not layers or layers != list(range(len(layers))):
        raise GemmaError(f"{where}: decoder layers are not numbered 0..N-1 (found {layers[:6]}...); the file is "
                         f"incomplete. {_EXPECTED}")
    need = ["layers.0.self_attn.q_proj.weight", "layers.0.self_attn.k_proj.weight", "layers.0.self_attn.q_norm.weight",
            "layers.0.mlp.gate_proj.weight", "norm.weight"]
    missing = [k for k in need if k not in state]
    if missing:
        raise GemmaError(f"{where} lacks {missing}, which Gemma 3 has (q_norm/k_norm set it apart from Gemma 2); "
                         f"{_EXPECTED}")
    vocab, hidden = state[_EMBED].shape
    head_dim = state["layers.0.self_attn.q_norm.weight"].shape[0]
    return {
        **GEMMA3_12B,
        "model_type": "gemma3_text",
        "vocab_size": int(vocab),
        "hidden_size": int(hidden),
        "num_hidden_layers": len(layers),
        "intermediate_size": int(state["layers.0.mlp.gate_proj.weight"].shape[0]),
        "head_dim": int(head_dim),
        "query_pre_attn_scalar": int(head_dim),
        "num_attention_heads": int(state["layers.0.self_attn.q_proj.weight"].shape[0] // head_dim),
        "num_key_value_heads": int(state["layers.0.self_attn.k_proj.weight"].shape[0] // head_dim),
    }


def _folder_text_config(folder: Path) -> dict:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise GemmaError(f"{folder} has no config.json; found {sorted(p.name for p in folder.iterdir())[:10]}. "
                         f"{_EXPECTED}")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except ValueError as e:
        raise GemmaError(f"{config_file} is not valid JSON ({e})") from e
    kind = config.get("model_type")
    if kind == "gemma3":
        return {**config.get("text_config", {}), "model_type": "gemma3_text"}
    if kind == "gemma3_text":
        return config
    raise GemmaError(f"{config_file} has model_type={kind!r}; LTX-2's text encoder is Gemma 3 ('gemma3' or "
                     f"'gemma3_text'). {_EXPECTED}")


@contextmanager
def _parameters_on_meta():
    """Build a module with its parameters on the meta device (no memory, no random init) but its buffers real,
    so the RoPE frequencies and embedding scale transformers computes in __init__ are there, whatever the
    transformers version (accelerate's init_empty_weights(include_buffers=False) does the same)."""
    register = nn.Module.register_parameter

    def on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register(module, name, param)
        if param is not None:
            module._parameters[name] = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = on_meta
    try:
        yield
    finally:
        nn.Module.register_parameter = register


def build_gemma(text_config: dict, state: dict[str, Tensor], where: str, device, dtype: torch.dtype) -> nn.Module:
    """transformers' Gemma3TextModel from a text config and its state dict (strict: every tensor needed).
    The state's tensors are moved into the model one by one (the dict is emptied)."""
    from transformers import Gemma3TextConfig, Gemma3TextModel

    config = Gemma3TextConfig(**{k: v for k, v in text_config.items() if k != "model_type"})
    config._attn_implementation = "sdpa"
    with _parameters_on_meta():
        model = Gemma3TextModel(config)
    expected = {k: v for k, v in model.state_dict().items() if v.is_meta}
    missing = sorted(set(expected) - set(state))
    if missing:
        raise GemmaError(f"{where} lacks {len(missing)} tensors a Gemma 3 text model with "
                         f"{config.num_hidden_layers} layers needs, e.g. {missing[:4]}; the file is incomplete. "
                         f"{_EXPECTED}")
    for k, v in expected.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise GemmaError(f"{where}: {k} has shape {tuple(state[k].shape)} but the config gives "
                             f"{tuple(v.shape)}; config.json and the weights do not belong together")
    for k in expected:
        owner, name = model.get_submodule(k.rpartition(".")[0]), k.rpartition(".")[2]
        owner._parameters[name] = nn.Parameter(state.pop(k).to(device=device, dtype=dtype), requires_grad=False)
    return model.to(device).eval()


class GemmaStates(nn.Module):
    """Gemma 3's language model: ids [B, T], mask [B, T] -> its num_layers + 1 hidden states, each [B, T, D]
    (the scaled embeddings first, the last after the final norm, as transformers returns them)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_states(self) -> int:
        return int(self.model.config.num_hidden_layers) + 1

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, ...]:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask.long(), output_hidden_states=True,
                         use_cache=False)
        return tuple(out.hidden_states)


def load_gemma(path: str | os.PathLike, device: torch.device | str = "cpu",
               dtype: torch.dtype | None = None) -> tuple[GemmaStates, GemmaPromptTokenizer, list[Path]]:
    """Gemma 3's language model from a Hugging Face folder or ComfyUI's single file.

    Returns the model (`GemmaStates`), LTX-2's tokenizer for it and the weight files read. dtype None: float32 on CPU, bfloat16 elsewhere (Gemma
    overflows float16).
    """
    path = Path(path)
    dtype = dtype or (torch.float32 if torch.device(device).type == "cpu" else torch.bfloat16)
    if path.is_dir():
        text_config = _folder_text_config(path)
        files = sorted(path.glob("*.safetensors"))
        if not files:
            pickled = sorted(p.name for p in path.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
            raise GemmaError(f"{path} has no *.safetensors weights" + (
                f" (only {pickled}: pickle can run code when loaded, so it is never opened; convert it to "
                "safetensors where you trust it)" if pickled else "") + f". {_EXPECTED}")
        state, _ = _read(files, dtype)
        tokenizer = folder_tokenizer(path)
    elif path.exists():
        files = [path]
        state, extra = _read(files, dtype)
        if SPIECE_KEY not in extra:
            raise GemmaError(f"{path.name} holds Gemma weights but no '{SPIECE_KEY}' tensor, so its tokenizer is "
                             "unknown; ComfyUI's gemma_3_12B_it*.safetensors embed it. Use such a file, or the "
                             "Hugging Face folder with tokenizer.json")
        text_config = text_config_from_shapes(state, path.name)
        tokenizer = sentencepiece_tokenizer(extra[SPIECE_KEY].numpy().tobytes(), f"{path.name}:{SPIECE_KEY}")
    else:
        raise GemmaError(f"{path}: no such file or folder. {_EXPECTED}")
    model = build_gemma(text_config, state, str(path), device, dtype)
    logger.info("loaded Gemma 3 (%d layers, width %d) from %s", model.config.num_hidden_layers,
                model.config.hidden_size, path)
    return GemmaStates(model), tokenizer, files
