"""Text encoders: tiny random models saved in each real format, loaded back through the real loaders."""

from __future__ import annotations

import copy
import os

import pytest
import sentencepiece as spm
import torch
from safetensors.torch import load_file, save_file
from transformers import (
    MT5Config,
    MT5EncoderModel,
    T5Config,
    T5EncoderModel,
    T5Tokenizer,
    UMT5Config,
    UMT5EncoderModel,
)

from aiprod_core.config import ConfigError, TextEncoderConfig
from aiprod_core.text import (
    EmbeddingCache,
    TextEncoderError,
    detect_script,
    encode_cached,
    from_conditioning,
    load_text_encoder,
    to_conditioning,
)
from aiprod_core.text.comfy_umt5 import comfy_t5_config

PROMPTS = [
    "A red fox runs through the snow at dawn",
    "一只红色的狐狸在黎明时分穿过雪地",
    "ثعلب أحمر يركض عبر الثلج عند الفجر",
    "एक लाल लोमड़ी भोर में बर्फ़ में दौड़ती है",
    "Рыжая лиса бежит по снегу на рассвете",
    "赤い狐が夜明けに雪の中を走る",
    "",
]
CORPUS = "\n".join(PROMPTS[:-1] * 2 + [
    "The camera pans slowly over a quiet city street at night",
    "镜头缓缓掠过夜晚安静的城市街道",
    "الكاميرا تتحرك ببطء فوق شارع هادئ في المدينة ليلا",
    "कैमरा रात में शांत शहर की सड़क पर धीरे-धीरे घूमता है",
    "Камера медленно проезжает над тихой городской улицей ночью",
    "カメラは夜の静かな街をゆっくりと横切る",
    "빠른 갈색 여우가 게으른 개를 뛰어넘는다",
])  # fmt: skip
MAX_LEN = 20
VOCAB = 200  # embedding rows; the tiny sentencepiece model has fewer pieces


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> bytes:
    """A tiny multilingual T5-style sentencepiece model (<pad>=0, </s>=1, <unk>=2), as .model bytes."""
    d = tmp_path_factory.mktemp("spm")
    (d / "corpus.txt").write_text(CORPUS, encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(d / "corpus.txt"),
        model_prefix=str(d / "sp"),
        vocab_size=180,
        hard_vocab_limit=False,
        model_type="unigram",
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        # No normaliser, so the transformers tokenizer built from the same pieces is an exact reference.
        normalization_rule_name="identity",
        minloglevel=2,
    )
    return (d / "sp.model").read_bytes()


@pytest.fixture(scope="module")
def hf_tokenizer(spm_model) -> T5Tokenizer:
    """The same pieces in a transformers T5 tokenizer (tokenizers backend): the reference tokenization."""
    sp = spm.SentencePieceProcessor(model_proto=spm_model)
    vocab = [(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def reference(model: torch.nn.Module, tokenizer, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """What the original model gives: states [B, L, D] zeroed past each prompt, mask [B, L]."""
    enc = tokenizer(prompts, padding="longest", truncation=True, max_length=MAX_LEN, return_tensors="pt")
    mask = enc["attention_mask"].bool()
    with torch.no_grad():
        h = model.eval()(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    return h * mask[..., None], mask


def tiny_model(kind: str, d_model: int = 32, heads: int = 4, d_kv: int = 8, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    cls_cfg, cls = {"t5": (T5Config, T5EncoderModel), "mt5": (MT5Config, MT5EncoderModel),
                    "umt5": (UMT5Config, UMT5EncoderModel)}[kind]  # fmt: skip
    cfg = cls_cfg(
        vocab_size=VOCAB,
        d_model=d_model,
        d_kv=d_kv,
        num_heads=heads,
        num_layers=2,
        d_ff=48,
        feed_forward_proj="gated-gelu",
        dropout_rate=0.0,
        is_encoder_decoder=False,
    )
    return cls(cfg).eval()


def count_forwards(module: torch.nn.Module) -> list[int]:
    """Batch sizes of every forward call of `module`, recorded by a forward hook."""
    calls: list[int] = []
    module.register_forward_hook(lambda m, args, kwargs, out: calls.append(kwargs["input_ids"].shape[0]),
                                 with_kwargs=True)  # fmt: skip
    return calls


# ---------------------------------------------------------------- byte-level encoder


def byte_cfg(**kw) -> TextEncoderConfig:
    return TextEncoderConfig(**{"kind": "byte", "dim": 32, "layers": 2, "heads": 4, "ff_dim": 64,
                                "max_length": MAX_LEN, **kw})  # fmt: skip


def test_byte_encoder_tokens_shapes_and_padding():
    torch.manual_seed(0)
    enc = load_text_encoder(byte_cfg())
    ids, _ = enc.tokenize(["héllo"])
    assert ids.tolist() == [[b + 3 for b in "héllo".encode()] + [1]]  # ByT5: byte + 3, then </s>

    hidden, mask = enc.encode(PROMPTS)
    lengths = [min(len(p.encode("utf-8")) + 1, MAX_LEN) for p in PROMPTS]
    assert hidden.dtype == torch.float32 and mask.dtype == torch.bool
    assert hidden.shape == (len(PROMPTS), max(lengths), 32)
    assert mask.sum(1).tolist() == lengths
    assert torch.all(hidden[~mask] == 0) and torch.all(hidden[mask].abs().sum(-1) > 0)
    # Padding does not change a prompt's states: each alone equals its row of the batch.
    for i in (0, 2, 6):
        alone, m = enc.encode([PROMPTS[i]])
        torch.testing.assert_close(alone[0], hidden[i, : m.shape[1]], atol=1e-5, rtol=1e-5)

    with pytest.raises(TypeError, match="list of prompts"):
        enc.encode("a single string")
    with pytest.raises(ConfigError, match="divisible"):
        load_text_encoder(byte_cfg(heads=5))


def test_byte_state_dict_round_trip_through_safetensors(tmp_path):
    torch.manual_seed(1)
    enc = load_text_encoder(byte_cfg())
    sd = enc.state_dict()
    assert all(k.startswith("model.") for k in sd) and "model.encoder.embed_tokens.weight" not in sd
    assert "model.shared.weight" in sd and sd["model.shared.weight"].shape == (384, 32)
    # As the checkpoint stores it: one file, prefixed; save_file refuses aliased tensors.
    save_file({f"text_encoder.{k}": v for k, v in sd.items()}, str(tmp_path / "ckpt.safetensors"))
    loaded = load_file(str(tmp_path / "ckpt.safetensors"))

    torch.manual_seed(2)
    other = load_text_encoder(byte_cfg())
    assert other.key != enc.key
    back = load_text_encoder(byte_cfg(), state_dict=loaded)
    assert back.key == enc.key and list(back.state_dict()) == list(sd)
    assert back.model.encoder.embed_tokens.weight is back.model.shared.weight
    torch.testing.assert_close(back.encode(PROMPTS)[0], enc.encode(PROMPTS)[0], atol=0, rtol=0)

    key = back.key
    with torch.no_grad():
        back.model.encoder.block[0].layer[0].SelfAttention.q.weight.add_(0.01)
    assert back.key != key  # an optimizer step changes the cache key

    with pytest.raises(TextEncoderError, match="shapes"):
        load_text_encoder(byte_cfg(ff_dim=96), state_dict=loaded)
    with pytest.raises(TextEncoderError, match="missing 1 keys"):
        load_text_encoder(byte_cfg(), state_dict={k: v for k, v in sd.items() if "final_layer_norm" not in k})


def test_byte_encoder_trains():
    enc = load_text_encoder(byte_cfg()).train()
    ids, mask = enc.tokenize(PROMPTS[:3])
    enc(ids, mask).pow(2).mean().backward()
    assert enc.model.encoder.block[1].layer[1].DenseReluDense.wo.weight.grad.abs().sum() > 0


# ---------------------------------------------------------------- Hugging Face folder


@pytest.mark.parametrize("model_type", ["t5", "mt5", "umt5"])
def test_hf_folder_matches_original(tmp_path, hf_tokenizer, model_type):
    model = tiny_model(model_type)
    model.save_pretrained(tmp_path, safe_serialization=True)
    hf_tokenizer.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "tokenizer.json").is_file()

    enc = load_text_encoder(TextEncoderConfig(kind="t5", dim=32, max_length=MAX_LEN, path=str(tmp_path)))
    assert type(enc.model) is type(model) and enc.dim == 32
    hidden, mask = enc.encode(PROMPTS)
    ref_h, ref_m = reference(model, hf_tokenizer, PROMPTS)
    assert torch.equal(mask, ref_m)
    assert mask.sum(1).max() == MAX_LEN  # a long prompt was truncated (and still ends with EOS)
    torch.testing.assert_close(hidden, ref_h, atol=1e-6, rtol=1e-5)


def test_hf_folder_with_spiece_model_only(tmp_path, spm_model, hf_tokenizer):
    model = tiny_model("umt5", seed=3)
    model.save_pretrained(tmp_path, safe_serialization=True)
    (tmp_path / "spiece.model").write_bytes(spm_model)
    enc = load_text_encoder(TextEncoderConfig(kind="t5", dim=32, max_length=MAX_LEN, path=str(tmp_path)))
    hidden, mask = enc.encode(PROMPTS)
    ref_h, ref_m = reference(model, hf_tokenizer, PROMPTS)
    assert torch.equal(mask, ref_m)
    torch.testing.assert_close(hidden, ref_h, atol=1e-6, rtol=1e-5)


def test_hf_folder_errors(tmp_path, hf_tokenizer):
    model = tiny_model("t5")
    model.save_pretrained(tmp_path, safe_serialization=True)
    hf_tokenizer.save_pretrained(tmp_path)
    cfg = TextEncoderConfig(kind="t5", dim=64, max_length=MAX_LEN, path=str(tmp_path))
    with pytest.raises(TextEncoderError, match=r"d_model=32 but text\.dim=64"):
        load_text_encoder(cfg)
    with pytest.raises(TextEncoderError, match="only kind='byte'"):
        load_text_encoder(
            TextEncoderConfig(kind="t5", dim=32, path=str(tmp_path)), state_dict={"x": torch.zeros(1)}
        )

    # Pickle weights are refused before anything reads them.
    os.replace(tmp_path / "model.safetensors", tmp_path / "pytorch_model.bin")
    with pytest.raises(TextEncoderError, match=r"pickle weights \['pytorch_model.bin'\].*safetensors"):
        load_text_encoder(TextEncoderConfig(kind="t5", dim=32, path=str(tmp_path)))
    with pytest.raises(TextEncoderError, match="does not exist"):
        load_text_encoder(TextEncoderConfig(kind="t5", dim=32, path=str(tmp_path / "nope")))


# ---------------------------------------------------------------- ComfyUI single file


def comfy_file_dict(model: torch.nn.Module, spm_model: bytes, prefix: str = "") -> dict[str, torch.Tensor]:
    """The layout of ComfyUI's text_encoders/umt5_xxl_*.safetensors: HF keys, no tied alias, spiece bytes."""
    sd = {prefix + k: v.clone() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    sd["spiece_model"] = torch.frombuffer(bytearray(spm_model), dtype=torch.uint8)
    return sd


@pytest.mark.parametrize(("model_type", "prefix"), [("umt5", ""), ("t5", "text_encoders.t5xxl.transformer.")])
def test_comfy_single_file_matches_original(tmp_path, spm_model, hf_tokenizer, model_type, prefix):
    # d_kv * heads (24) != d_model (32): the loader must read heads from relative_attention_bias.
    model = tiny_model(model_type, d_model=32, heads=2, d_kv=12, seed=4)
    path = tmp_path / "umt5_xxl_tiny.safetensors"
    save_file(comfy_file_dict(model, spm_model, prefix), str(path))

    config = comfy_t5_config(path)
    assert (config.model_type, config.d_model, config.num_heads, config.d_kv) == (model_type, 32, 2, 12)
    assert (config.num_layers, config.d_ff, config.vocab_size) == (2, 48, VOCAB)
    enc = load_text_encoder(TextEncoderConfig(kind="umt5_comfy", dim=32, max_length=MAX_LEN, path=str(path)))
    assert type(enc.model) is type(model)
    hidden, mask = enc.encode(PROMPTS)
    ref_h, ref_m = reference(model, hf_tokenizer, PROMPTS)
    assert torch.equal(mask, ref_m)
    torch.testing.assert_close(hidden, ref_h, atol=1e-6, rtol=1e-5)


def test_comfy_scaled_fp8_file(tmp_path, spm_model, hf_tokenizer):
    fp8 = torch.float8_e4m3fn
    model = tiny_model("umt5", seed=5)
    sd = comfy_file_dict(model, spm_model)
    dequantised = {}
    for k in list(sd):
        if (".SelfAttention." in k and "relative_attention_bias" not in k) or ".DenseReluDense." in k:
            scale = sd[k].abs().amax().float() / 448.0  # e4m3fn's largest value, as ComfyUI scales
            sd[k] = (sd[k] / scale).to(fp8)
            sd[k.removesuffix("weight") + "scale_weight"] = scale
            dequantised[k] = sd[k].float() * scale
    sd["scaled_fp8"] = torch.empty(0, dtype=fp8)
    path = tmp_path / "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
    save_file(sd, str(path))

    ref_model = copy.deepcopy(model)
    ref_model.load_state_dict(dequantised, strict=False)
    enc = load_text_encoder(TextEncoderConfig(kind="umt5_comfy", dim=32, max_length=MAX_LEN, path=str(path)))
    assert enc.dtype == torch.float32
    hidden, mask = enc.encode(PROMPTS)
    ref_h, ref_m = reference(ref_model, hf_tokenizer, PROMPTS)
    assert torch.equal(mask, ref_m)
    torch.testing.assert_close(hidden, ref_h, atol=1e-6, rtol=1e-5)
    # fp8 rounding moves the states a little, not a lot: the scales were applied.
    full = reference(model, hf_tokenizer, PROMPTS)[0]
    assert torch.nn.functional.cosine_similarity(hidden[mask], full[mask], dim=-1).mean() > 0.9

    cfg = TextEncoderConfig(kind="umt5_comfy", dim=32, max_length=MAX_LEN, path=str(path))
    half = load_text_encoder(cfg, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and half.key != enc.key  # cached states depend on the compute dtype
    h16, m16 = half.encode(PROMPTS)
    assert h16.dtype == torch.float32 and torch.equal(m16, mask)
    torch.testing.assert_close(h16, hidden, atol=0.1, rtol=0.05)


def test_comfy_file_errors(tmp_path, spm_model):
    vae = tmp_path / "wan_vae.safetensors"
    save_file(
        {"decoder.conv_in.weight": torch.zeros(4, 3), "encoder.conv_out.bias": torch.zeros(4)}, str(vae)
    )
    with pytest.raises(TextEncoderError, match=r"wan_vae\.safetensors is not a T5/umT5 text encoder") as e:
        load_text_encoder(TextEncoderConfig(kind="umt5_comfy", dim=32, path=str(vae)))
    assert "shared.weight" in str(e.value) and "decoder.conv_in.weight" in str(e.value)

    no_tok = tmp_path / "t5_no_tokenizer.safetensors"
    sd = comfy_file_dict(tiny_model("umt5"), spm_model)
    del sd["spiece_model"]
    save_file(sd, str(no_tok))
    with pytest.raises(TextEncoderError, match="no 'spiece_model' tensor"):
        load_text_encoder(TextEncoderConfig(kind="umt5_comfy", dim=32, path=str(no_tok)))

    pickled = tmp_path / "umt5_xxl.pth"
    pickled.write_bytes(b"\x80\x04not read")
    with pytest.raises(TextEncoderError, match="pickle"):
        load_text_encoder(TextEncoderConfig(kind="umt5_comfy", dim=32, path=str(pickled)))
    garbage = tmp_path / "broken.safetensors"
    garbage.write_bytes(b"\x00" * 16)
    with pytest.raises(TextEncoderError, match="not a safetensors file"):
        load_text_encoder(TextEncoderConfig(kind="umt5_comfy", dim=32, path=str(garbage)))


# ---------------------------------------------------------------- embedding cache


def test_cache_skips_the_model_and_survives_on_disk(tmp_path):
    torch.manual_seed(6)
    enc = load_text_encoder(byte_cfg())
    calls = count_forwards(enc.model)
    want_h, want_m = enc.encode(PROMPTS)
    assert calls == [len(PROMPTS)]

    cache = EmbeddingCache(max_items=16, directory=tmp_path / "cache")
    h, m = encode_cached(enc, PROMPTS, cache)
    assert calls[1:] == [len(PROMPTS)]
    assert torch.equal(m, want_m)
    torch.testing.assert_close(h, want_h, atol=1e-5, rtol=1e-5)
    h2, m2 = encode_cached(enc, PROMPTS, cache)
    assert len(calls) == 2 and torch.equal(h2, h) and torch.equal(m2, m)

    # A batch re-pads to its own longest prompt; only the new prompt runs, once.
    h3, m3 = encode_cached(enc, [PROMPTS[6], "new prompt", PROMPTS[0], "new prompt"], cache)
    assert calls[2:] == [1]
    assert m3.shape[1] == want_m[0].sum() and torch.equal(h3[2], want_h[0, : m3.shape[1]])
    torch.testing.assert_close(h3[1], h3[3])

    files = sorted(os.listdir(tmp_path / "cache"))
    assert len(files) == len(PROMPTS) + 1 and all(f.endswith(".safetensors") for f in files)

    fresh = EmbeddingCache(max_items=16, directory=tmp_path / "cache")
    h4, m4 = encode_cached(enc, PROMPTS, fresh)
    assert len(calls) == 3 and torch.equal(h4, h) and torch.equal(m4, m)

    torch.manual_seed(7)
    other = load_text_encoder(byte_cfg())  # other weights: other key, no stale hit
    other_calls = count_forwards(other.model)
    encode_cached(other, PROMPTS[:2], fresh)
    assert other_calls == [2]


def test_cache_lru_and_unreadable_files(tmp_path):
    cache = EmbeddingCache(max_items=2, directory=tmp_path)
    for i in range(3):
        cache.put("enc", f"p{i}", torch.full((i + 1, 4), float(i)))
    assert len(cache) == 2
    cache.clear()
    assert cache.get("enc", "p0").shape == (1, 4)  # evicted from memory, read back from disk
    (tmp_path / os.listdir(tmp_path)[0]).write_bytes(b"truncated")
    assert sum(cache.get("enc", f"p{i}") is None for i in range(3)) <= 1
    memory_only = EmbeddingCache(max_items=1)
    memory_only.put("enc", "a", torch.zeros(2, 4))
    memory_only.put("enc", "b", torch.zeros(2, 4))
    assert memory_only.get("enc", "a") is None and memory_only.get("enc", "b") is not None


# ---------------------------------------------------------------- conditioning and scripts


def test_conditioning_round_trip_and_comfy_inputs():
    hidden = torch.randn(2, 5, 32)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    cond = to_conditioning(hidden, mask)
    assert len(cond) == 1 and torch.equal(cond[0][1]["attention_mask"], mask)
    h, m = from_conditioning(cond)
    assert torch.equal(h, hidden) and torch.equal(m, mask)

    # Core CLIPTextEncode (umT5 via CLIPLoader 'wan'): fp16/bf16 states, no attention_mask.
    h, m = from_conditioning([[torch.randn(1, 512, 32, dtype=torch.bfloat16), {"pooled_output": None}]])
    assert h.dtype == torch.float32 and m.dtype == torch.bool and m.shape == (1, 512) and m.all()
    _, m = from_conditioning([[hidden, {"attention_mask": mask.long()}]])
    assert torch.equal(m, mask)

    bad = {
        "non-empty list": None,
        "of length 0": [],
        "2 entries": [[hidden, {}], [hidden, {}]],
        "entry must be": [[hidden]],
        r"\[B, L, D\]": [[torch.randn(5, 32), {}]],
        r"attention_mask must be a tensor \[B, L\] = \[2, 5\]": [
            [hidden, {"attention_mask": torch.ones(2, 6)}]
        ],
    }
    for message, cond in bad.items():
        with pytest.raises(TextEncoderError, match=message):
            from_conditioning(cond)
    with pytest.raises(TextEncoderError, match="attention_mask"):
        to_conditioning(hidden, mask[0])


@pytest.mark.parametrize(
    ("text", "script"),
    [
        (PROMPTS[0], "Latin"),
        (PROMPTS[1], "Han"),
        (PROMPTS[2], "Arabic"),
        (PROMPTS[3], "Devanagari"),
        (PROMPTS[4], "Cyrillic"),
        ("カメラ", "Hiragana/Katakana"),
        ("빠른 갈색 여우", "Hangul"),
        (PROMPTS[5], "Mixed: Han, Hiragana/Katakana"),  # 7 and 7 letters: ties go alphabetically
        ("a photo of 東京 at night", "Mixed: Latin, Han"),
        ("Ｆｕｌｌ width café", "Latin"),
        ("2024 🎥 !!", "Unknown"),
    ],
)
def test_detect_script(text, script):
    assert detect_script(text) == script
