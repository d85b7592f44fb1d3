"""Tiny Gemma 3 and LTX-2 text-connector files in the layouts they are released in, for tests/ltx2/test_ltx2_text.py.

Nothing is downloaded: the tokenizer is a sentencepiece BPE model trained here on a few sentences (Gemma's special
ids: <pad> 0, <eos> 1, <bos> 2, <unk> 3, byte fallback, no dummy prefix, no normalisation), Gemma is transformers'
Gemma3ForConditionalGeneration at a tiny config with random weights, and the connector is built from ltx-core's
modules with random weights.

Layouts written:
- Google's Hugging Face folder: config.json (model_type gemma3 with text_config), model.safetensors with
  `language_model.model.*`, `vision_tower.*`, `multi_modal_projector.*`, tokenizer.json + tokenizer_config.json;
- ComfyUI's single file: `model.*` (language model), `vision_model.*`, `multi_modal_projector.*` and the
  tokenizer bytes as the uint8 tensor `spiece_model`; fp8 forms as ComfyUI writes them (`comfy_quant`: per-layer
  JSON tag + `.weight_scale`; `scaled_fp8`: marker + `.scale_weight`);
- LTX-2's checkpoint: `text_embedding_projection.aggregate_embed.weight` (or V2's `video_aggregate_embed.*`),
  `model.diffusion_model.video_embeddings_connector.*` and `...audio_embeddings_connector.*`, config JSON in the
  metadata key `config`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import Tensor

SENTENCES = [
    "A cat walks across a sunny kitchen floor.",
    "Un chat marche lentement sur le sol de la cuisine.",
    "猫が台所をゆっくり歩いている。",
    "Кошка медленно идёт по кухне.",
    "The camera pans slowly to the left over the ocean at sunset.",
    "Ein roter Ball rollt über die Straße.",
]
SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>")


def train_spm(vocab_size: int = 400) -> bytes:
    """A sentencepiece BPE model with Gemma's special ids and normalisation, as bytes."""
    import sentencepiece as spm

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(SENTENCES * 4), model_writer=buf, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
        bos_piece="<bos>", unk_piece="<unk>", character_coverage=1.0, num_threads=1, minloglevel=2,
        add_dummy_prefix=False, remove_extra_whitespaces=False, normalization_rule_name="identity",
    )
    return buf.getvalue()


def write_hf_tokenizer(folder: Path, proto: bytes) -> None:
    """tokenizer.json for the same pieces and merges, as Gemma's release has one (transformers' GemmaTokenizer:
    BPE with byte fallback, <bos> added)."""
    import sentencepiece as spm
    from transformers import GemmaTokenizer
    from transformers.tokenization_utils_base import generate_merges

    sp = spm.SentencePieceProcessor(model_proto=proto)
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(sp.get_piece_size())}
    merges = generate_merges(vocab, scores, skip_tokens=set(SPECIALS))
    GemmaTokenizer(vocab=vocab, merges=merges, add_bos_token=True).save_pretrained(str(folder))


def text_config(**over) -> dict:
    """A tiny Gemma 3 text config; the settings not read from shapes are Gemma 3 12B's unless overridden."""
    cfg = dict(vocab_size=416, hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
               num_key_value_heads=2, head_dim=8, query_pre_attn_scalar=8, rope_theta=1_000_000.0,
               rope_local_base_freq=10_000.0, rope_scaling={"rope_type": "linear", "factor": 8.0},
               sliding_window=1024, sliding_window_pattern=6, max_position_embeddings=131072, rms_norm_eps=1e-6,
               hidden_activation="gelu_pytorch_tanh")
    cfg.update(over)
    return cfg


def tiny_gemma3(seed: int = 0, **over):
    """transformers' Gemma3ForConditionalGeneration (as ltx-core builds it) with every weight random, float32."""
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    vision = dict(model_type="siglip_vision_model", hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, image_size=28, patch_size=14)
    config = Gemma3Config(text_config=text_config(**over), vision_config=vision, mm_tokens_per_image=4)
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(config).float().eval()
    with torch.no_grad():  # norms start at 0 (Gemma scales by 1 + w): move every weight off its init
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.3 if p.ndim == 1 else 0.15))
    return model


def language_model_state(model) -> dict[str, Tensor]:
    """The reference's language model tensors, names as in Gemma3TextModel."""
    return {k: v.detach().clone().contiguous() for k, v in model.model.language_model.state_dict().items()}


def _vision_state(model) -> dict[str, Tensor]:
    out = {}
    for k, v in model.model.vision_tower.state_dict().items():
        out["vision_tower." + k] = v.contiguous()
    for k, v in model.model.multi_modal_projector.state_dict().items():
        out["multi_modal_projector." + k] = v.contiguous()
    return out


def write_hf_folder(folder: Path, model, proto: bytes, layout: str = "google") -> Path:
    """A Hugging Face Gemma 3 folder. layout "google": keys as in google/gemma-3-12b-it
    (`language_model.model.*`); "transformers": as a recent transformers saves (`model.language_model.*`)."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = {"google": "language_model.model.", "transformers": "model.language_model."}[layout]
    tensors = {prefix + k: v for k, v in language_model_state(model).items()}
    vision_prefix = "" if layout == "google" else "model."
    tensors.update({vision_prefix + k: v for k, v in _vision_state(model).items()})
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(model.config.to_dict()))
    write_hf_tokenizer(folder, proto)
    return folder


def quantize_fp8(w: Tensor) -> tuple[Tensor, Tensor]:
    """Per-tensor scaled float8_e4m3fn, as ComfyUI's fp8_scaled files hold linear weights."""
    scale = (w.abs().max() / 448.0).clamp(min=1e-12).float()
    return (w / scale).to(torch.float8_e4m3fn), scale.reshape(())


def write_comfy_file(path: Path, model, proto: bytes, form: str = "bf16") -> dict[str, Tensor]:
    """ComfyUI's gemma_3_12B_it*.safetensors. form: "bf16", "fp32", "fp8_comfy_quant", "fp8_scaled_legacy".

    Returns the language model's tensors as a reader should recover them (bf16 rounding, fp8 dequantised)."""
    lm = language_model_state(model)
    tensors: dict[str, Tensor] = {}
    recovered: dict[str, Tensor] = {}
    for k, w in lm.items():
        key = "model." + k
        linear = k.endswith("_proj.weight") and form.startswith("fp8")
        if linear:
            q, scale = quantize_fp8(w)
            tensors[key] = q
            layer = key[: -len(".weight")]
            if form == "fp8_comfy_quant":
                tensors[layer + ".weight_scale"] = scale
                tensors[layer + ".comfy_quant"] = torch.tensor(list(json.dumps({"format": "float8_e4m3fn"}).encode()),
                                                               dtype=torch.uint8)
            else:
                tensors[layer + ".scale_weight"] = scale
            recovered[k] = q.float() * scale
        else:
            stored = w.float() if form == "fp32" else w.to(torch.bfloat16)
            tensors[key] = stored
            recovered[k] = stored.float()
    if form == "fp8_scaled_legacy":
        tensors["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    for k, v in _vision_state(model).items():
        name = k.replace("vision_tower.vision_model.", "vision_model.")
        tensors[name] = v.to(torch.bfloat16)
    tensors["spiece_model"] = torch.frombuffer(bytearray(proto), dtype=torch.uint8)
    save_file(tensors, str(path))
    return recovered


# --- LTX-2's text connector (ltx-core's modules) -------------------------------------------------------------

# the transformer config section as a tiny LTX-2 19B checkpoint would carry it (connector keys only)
TINY_19B = {"connector_num_attention_heads": 4, "connector_attention_head_dim": 8, "connector_num_layers": 2,
            "connector_num_learnable_registers": 8, "connector_positional_embedding_max_pos": [4096],
            "rope_type": "split", "frequencies_precision": "float64", "positional_embedding_theta": 10000.0}
TINY_INTERLEAVED = {**TINY_19B, "rope_type": "interleaved", "connector_positional_embedding_max_pos": [1]}
del TINY_INTERLEAVED["frequencies_precision"]
TINY_23 = {**TINY_19B, "connector_num_attention_heads": 6, "connector_apply_gated_attention": True,
           "caption_proj_before_connector": True, "caption_projection_first_linear": False,
           "caption_proj_input_norm": False, "caption_projection_second_linear": False}


def reference_processor(transformer: dict, gemma_dim: int, gemma_states: int, seed: int = 1):
    """ltx-core's EmbeddingsProcessor (feature extractor + video connector) at a tiny config, every weight random."""
    from ltx_core.model.transformer.rope import LTXRopeType
    from ltx_core.text_encoders.gemma.embeddings_connector import Embeddings1DConnector
    from ltx_core.text_encoders.gemma.embeddings_processor import EmbeddingsProcessor
    from ltx_core.text_encoders.gemma.feature_extractor import FeatureExtractorV1, FeatureExtractorV2

    torch.manual_seed(seed)
    heads, head_dim = transformer["connector_num_attention_heads"], transformer["connector_attention_head_dim"]
    connector = Embeddings1DConnector(
        attention_head_dim=head_dim, num_attention_heads=heads, num_layers=transformer["connector_num_layers"],
        positional_embedding_max_pos=transformer["connector_positional_embedding_max_pos"],
        num_learnable_registers=transformer["connector_num_learnable_registers"],
        rope_type=LTXRopeType(transformer["rope_type"]),
        double_precision_rope=transformer.get("frequencies_precision") == "float64",
        apply_gated_attention=transformer.get("connector_apply_gated_attention", False),
    )
    flat = gemma_dim * gemma_states
    if transformer.get("caption_proj_before_connector"):
        extractor = FeatureExtractorV2(torch.nn.Linear(flat, heads * head_dim, bias=True), embedding_dim=gemma_dim)
    else:
        extractor = FeatureExtractorV1(torch.nn.Linear(flat, gemma_dim, bias=False))
    proc = EmbeddingsProcessor(feature_extractor=extractor, video_connector=connector).float().eval()
    with torch.no_grad():
        for p in proc.parameters():
            p.add_(0.2 * torch.randn_like(p))  # q/k norms start at 1 and gates at 0: move them too
    return proc


def write_ltx2_checkpoint(path: Path, proc, transformer: dict, layout: str = "released") -> None:
    """The connector's tensors as an LTX-2 checkpoint holds them. layout "released": Lightricks' single file
    (with an audio connector and a transformer tensor beside, and the config in the metadata); "comfy": ComfyUI's
    text projection file (no config)."""
    fe = proc.feature_extractor.state_dict()
    conn = proc.video_connector.state_dict()
    if layout == "comfy":
        tensors = {"text_embedding_projection.weight": fe["aggregate_embed.weight"]}
        tensors.update({"video_embeddings_connector." + k: v for k, v in conn.items()})
        tensors.update({"audio_embeddings_connector." + k: v.clone() for k, v in conn.items()})
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
        return
    tensors = {"text_embedding_projection." + k: v for k, v in fe.items()}
    tensors.update({"model.diffusion_model.video_embeddings_connector." + k: v for k, v in conn.items()})
    tensors.update({"model.diffusion_model.audio_embeddings_connector." + k: v.clone() for k, v in conn.items()})
    tensors["model.diffusion_model.adaln_single.linear.weight"] = torch.zeros(6, 4)
    config = {"transformer": transformer, "vae": {}}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata={"config": json.dumps(config)})
