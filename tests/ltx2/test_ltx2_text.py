"""LTX-2's text path: Gemma 3 loaded from its released forms, LTX-2's tokenization, and the feature extractor +
embeddings connector, each against the reference: transformers' own Gemma 3 and Lightricks' ltx-core 1.0.0.

Every file is written here at a tiny config with random weights (tests/ltx2/text_files.py) and read back."""

import json
import pickle

import pytest
import torch
from safetensors.torch import save_file
from text_files import (
    TINY_19B,
    TINY_23,
    TINY_INTERLEAVED,
    reference_processor,
    tiny_gemma3,
    train_spm,
    write_comfy_file,
    write_hf_folder,
    write_hf_tokenizer,
    write_ltx2_checkpoint,
)

from aiprod_core.families.ltx2.connector import ConnectorConfig, ConnectorConfigError, TextConnector
from aiprod_core.families.ltx2.connector_files import load_text_connector
from aiprod_core.families.ltx2.files import LTX2FileError
from aiprod_core.families.ltx2.gemma import GemmaError, load_gemma
from aiprod_core.families.ltx2.gemma_tokenizer import (
    GemmaTokenizerError,
    folder_tokenizer,
    sentencepiece_tokenizer,
)
from aiprod_core.families.ltx2.text import load_ltx2_text_encoder
from aiprod_core.text.cache import EmbeddingCache, encode_cached

pytest.importorskip("ltx_core", reason="the reference is ltx-core 1.0.0")
from ltx2_files import rel_err
from ltx_core.text_encoders.gemma.encoders.base_encoder import GemmaTextEncoder
from ltx_core.text_encoders.gemma.tokenizer import LTXVGemmaTokenizer

PROMPTS = [
    "A cat walks across a sunny kitchen floor.",
    "  Un chat marche lentement sur le sol de la cuisine.  ",
    "猫が台所をゆっくり歩いている。",
    "Кошка медленно идёт по кухне 🙂",
    "Ein roter Ball rollt über die Straße, und die Kamera folgt ihm langsam nach links, bis er im Schatten liegt.",
]
MAX_LENGTH = 32  # LTX-2 reads 1024; small here so the reference's padded Gemma pass stays fast


@pytest.fixture(scope="module")
def proto():
    return train_spm()


@pytest.fixture(scope="module")
def gemma_ref():
    return tiny_gemma3()


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory, gemma_ref, proto):
    return write_hf_folder(tmp_path_factory.mktemp("gemma") / "gemma-3-tiny-it", gemma_ref, proto)


def reference_states(model, ids, mask):
    out = model.model(input_ids=ids, attention_mask=mask.long(), output_hidden_states=True)
    return out.hidden_states


# --- tokenization --------------------------------------------------------------------------------------------


def test_tokenization_matches_ltx_core(hf_folder, proto):
    reference = LTXVGemmaTokenizer(str(hf_folder), max_length=MAX_LENGTH)
    ours = {"tokenizer.json": folder_tokenizer(hf_folder), "spiece_model": sentencepiece_tokenizer(proto, "test")}
    for prompt in [*PROMPTS, "", "   "]:
        pairs = reference.tokenize_with_weights(prompt)["gemma"]
        ref_ids = torch.tensor([int(t) for t, _ in pairs])
        ref_mask = torch.tensor([int(w) for _, w in pairs]).bool()
        assert ref_ids[ref_mask][0] == 2, "the reference starts with <bos>"
        for name, tok in ours.items():
            ids, mask = tok([prompt], MAX_LENGTH)
            assert ids[mask].tolist() == ref_ids[ref_mask].tolist(), (name, prompt)
            assert mask[0, -1] and (ids[~mask] == 0).all(), "left-padded with <pad> = 0"
    long_prompt = PROMPTS[4] * 3
    assert len(ours["spiece_model"].rows([long_prompt], MAX_LENGTH)[0]) == MAX_LENGTH  # cut, <bos> kept
    ids, mask = ours["tokenizer.json"](PROMPTS, MAX_LENGTH)
    assert mask[:, -1].all() and not mask[:, 0].all(), "a batch is left-padded to its longest prompt"


# --- Gemma weights -----------------------------------------------------------------------------------------


def _check_states(gemma, reference, proto):
    tok = sentencepiece_tokenizer(proto, "test")
    ids, mask = tok(PROMPTS, MAX_LENGTH)
    with torch.no_grad():
        ours = gemma(ids, mask)
        ref = reference_states(reference, ids, mask)
    assert len(ours) == len(ref) == reference.config.text_config.num_hidden_layers + 1
    err = max((a - b)[mask].abs().max().item() for a, b in zip(ours, ref))
    assert err <= 1e-5, err
    return err


@pytest.mark.parametrize("layout", ["google", "transformers"])
def test_gemma_from_a_hugging_face_folder(tmp_path, proto, layout):
    # a sliding window shorter than the prompts, so the local layers' masks matter
    reference = tiny_gemma3(seed=3, sliding_window=4, sliding_window_pattern=2)
    folder = write_hf_folder(tmp_path / layout, reference, proto, layout=layout)
    gemma, _, files = load_gemma(folder)
    assert [f.name for f in files] == ["model.safetensors"]
    assert gemma.model.config.sliding_window == 4
    assert not any("vision" in k for k in gemma.state_dict()), "the vision tower is not built"
    _check_states(gemma, reference, proto)


@pytest.mark.parametrize("form", ["fp32", "bf16", "fp8_comfy_quant", "fp8_scaled_legacy"])
def test_gemma_from_comfyui_single_file(tmp_path, gemma_ref, proto, form):
    path = tmp_path / f"gemma_3_tiny_it_{form}.safetensors"
    recovered = write_comfy_file(path, gemma_ref, proto, form)
    reference = tiny_gemma3()
    reference.model.language_model.load_state_dict(recovered)  # the weights as the file can give them
    gemma, tokenizer, _ = load_gemma(path)
    assert tokenizer.vocab_size == 400 and gemma.model.config.vocab_size == 416 and gemma.num_states == 4
    _check_states(gemma, reference, proto)
    if form.startswith("fp8"):  # the fp8 rounding is real: the original weights give other states
        ids, mask = tokenizer(PROMPTS[:1], MAX_LENGTH)
        with torch.no_grad():
            assert (gemma(ids, mask)[-1] - reference_states(gemma_ref, ids, mask)[-1]).abs().max() > 1e-4


# --- feature extractor + connector ---------------------------------------------------------------------------


def _random_states(gemma_dim, gemma_states, lengths, total, seed=5):
    g = torch.Generator().manual_seed(seed)
    states = tuple(torch.randn(len(lengths), total, gemma_dim, generator=g) * (1 + i) for i in range(gemma_states))
    mask = torch.zeros(len(lengths), total, dtype=torch.bool)
    for i, n in enumerate(lengths):
        mask[i, total - n:] = True  # left-padded, as LTX-2 tokenizes
    return states, mask


@pytest.mark.parametrize("name,transformer", [("19b_split", TINY_19B), ("interleaved", TINY_INTERLEAVED),
                                              ("23_v2_gated", TINY_23)])
def test_connector_matches_ltx_core(tmp_path, name, transformer):
    gemma_dim, gemma_states = 32, 4  # V1 works at Gemma's width: 4 heads x 8
    proc = reference_processor(transformer, gemma_dim, gemma_states)
    path = tmp_path / "ltx-2-tiny.safetensors"
    write_ltx2_checkpoint(path, proc, transformer)
    ours = load_text_connector(path, gemma_dim)
    assert ours.config.version == (2 if name.startswith("23") else 1)
    states, mask = _random_states(gemma_dim, gemma_states, [5, 16, 1], total=16)
    with torch.no_grad():
        ctx, ctx_mask = ours(states, mask, length=16)
        for i in range(len(mask)):  # the reference handles one prompt at a time
            ref = proc.process_hidden_states(tuple(s[i:i + 1] for s in states), mask[i:i + 1].long())
            err = rel_err(ctx[i], ref.video_encoding[0])
            assert err <= 1e-4, (name, i, err)
            assert ctx_mask[i].tolist() == ref.attention_mask[0].bool().tolist()
    assert ctx_mask.all(), "registers fill the context: nothing is masked"


def test_connector_from_comfyui_text_projection_file(tmp_path):
    # without a config ComfyUI takes heads of 128 (and LTX-2's split RoPE in float64, max_pos 4096)
    gemma_dim, gemma_states = 128, 3
    transformer = {**TINY_19B, "connector_num_attention_heads": 1, "connector_attention_head_dim": 128}
    proc = reference_processor(transformer, gemma_dim, gemma_states)
    path = tmp_path / "ltx-2-19b-text-projection.safetensors"
    write_ltx2_checkpoint(path, proc, transformer, layout="comfy")
    ours = load_text_connector(path, gemma_dim)
    assert (ours.config.layers, ours.config.registers, ours.config.rope_type) == (2, 8, "split")
    states, mask = _random_states(gemma_dim, gemma_states, [7], total=16)
    with torch.no_grad():
        ref = proc.process_hidden_states(states, mask.long()).video_encoding
        assert rel_err(ours(states, mask, length=16)[0], ref) <= 1e-4


# --- the whole path ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ltx2_checkpoint(tmp_path_factory, gemma_ref):
    dim = gemma_ref.config.text_config.hidden_size
    transformer = {**TINY_19B, "connector_attention_head_dim": dim // 4}
    proc = reference_processor(transformer, dim, gemma_ref.config.text_config.num_hidden_layers + 1)
    path = tmp_path_factory.mktemp("ltx2") / "ltx-2-tiny-dev.safetensors"
    write_ltx2_checkpoint(path, proc, transformer)
    return path, proc


def test_prompt_to_context_matches_ltx_core(hf_folder, gemma_ref, ltx2_checkpoint, tmp_path, proto):
    path, proc = ltx2_checkpoint
    reference = GemmaTextEncoder(model=gemma_ref, tokenizer=LTXVGemmaTokenizer(str(hf_folder), MAX_LENGTH))
    comfy = tmp_path / "gemma_3_tiny_it.safetensors"
    write_comfy_file(comfy, gemma_ref, proto, "fp32")
    for source in (hf_folder, comfy):
        encoder = load_ltx2_text_encoder(source, path, max_length=MAX_LENGTH)
        ctx, mask = encoder.encode(PROMPTS)  # one batch, padded to its longest prompt, not to MAX_LENGTH
        assert ctx.shape == (len(PROMPTS), MAX_LENGTH, encoder.dim) and mask.all()
        with torch.no_grad():
            for i, prompt in enumerate(PROMPTS):
                states, ref_mask = reference.encode(prompt)  # left-padded to MAX_LENGTH, as LTX-2 does
                ref = proc.process_hidden_states(states, ref_mask).video_encoding[0]
                err = rel_err(ctx[i], ref)
                assert err <= 1e-4, (source.name, prompt, err)


def test_contexts_are_cached_by_prompt(hf_folder, ltx2_checkpoint, tmp_path):
    encoder = load_ltx2_text_encoder(hf_folder, ltx2_checkpoint[0], max_length=MAX_LENGTH)
    cache = EmbeddingCache(directory=tmp_path / "cache")
    first, mask = encode_cached(encoder, PROMPTS[:2], cache)
    again, _ = encode_cached(encoder, [PROMPTS[1], PROMPTS[0]], EmbeddingCache(directory=tmp_path / "cache"))
    assert cache.misses == 2 and torch.equal(again[0], first[1]) and torch.equal(again[1], first[0])
    assert mask.all() and first.shape[1] == MAX_LENGTH
    other = load_ltx2_text_encoder(hf_folder, ltx2_checkpoint[0], max_length=64)
    assert other.key != encoder.key, "another context length is another cache entry"


def test_bfloat16_and_the_token_limit(hf_folder, ltx2_checkpoint):
    fp32 = load_ltx2_text_encoder(hf_folder, ltx2_checkpoint[0], max_length=MAX_LENGTH)
    bf16 = load_ltx2_text_encoder(hf_folder, ltx2_checkpoint[0], max_length=MAX_LENGTH, dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and bf16.key != fp32.key
    ctx, _ = bf16.encode(PROMPTS[:2])
    assert ctx.dtype == torch.float32 and rel_err(ctx, fp32.encode(PROMPTS[:2])[0]) < 0.05
    long_prompt = " ".join([PROMPTS[0]] * 4)
    cut = fp32.truncation(long_prompt)
    assert cut.cut and cut.limit == MAX_LENGTH - 1 and fp32.count_tokens(cut.kept) <= cut.limit
    assert cut.kept + cut.dropped == long_prompt and "ignores" in cut.warning()
    assert not fp32.truncation(PROMPTS[0]).cut


# --- wrong files ---------------------------------------------------------------------------------------------


def test_wrong_gemma_files_are_refused_with_what_was_expected(tmp_path, gemma_ref, proto, ltx2_checkpoint):
    pickled = tmp_path / "gemma.safetensors"
    pickled.write_bytes(pickle.dumps({"model.embed_tokens.weight": [0.0]}))
    with pytest.raises(GemmaError, match="pickle"):
        load_gemma(pickled)
    with pytest.raises(GemmaError, match=r"no Gemma language model.*gemma_3_12B_it"):
        load_gemma(ltx2_checkpoint[0])  # the LTX-2 checkpoint given as the text encoder

    no_tokenizer = tmp_path / "no_spiece.safetensors"
    write_comfy_file(no_tokenizer, gemma_ref, proto, "bf16")
    from safetensors.torch import load_file

    tensors = load_file(str(no_tokenizer))
    del tensors["spiece_model"]
    save_file(tensors, str(no_tokenizer))
    with pytest.raises(GemmaError, match="no 'spiece_model'"):
        load_gemma(no_tokenizer)

    fp4 = tmp_path / "gemma_3_tiny_it_fp4_mixed.safetensors"
    tensors["spiece_model"] = torch.frombuffer(bytearray(proto), dtype=torch.uint8)
    tensors["model.layers.0.mlp.up_proj.comfy_quant"] = torch.tensor(list(b'{"format": "nvfp4"}'), dtype=torch.uint8)
    save_file(tensors, str(fp4))
    with pytest.raises(GemmaError, match="nvfp4"):
        load_gemma(fp4)

    incomplete = tmp_path / "incomplete.safetensors"
    del tensors["model.layers.0.mlp.up_proj.comfy_quant"]
    save_file({k: v for k, v in tensors.items() if ".layers.1." not in k}, str(incomplete))
    with pytest.raises(GemmaError, match="not numbered"):
        load_gemma(incomplete)

    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(fp4.read_bytes()[:-1000])
    with pytest.raises(GemmaError, match="copy it again"):
        load_gemma(truncated)

    folder = tmp_path / "not_gemma"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(GemmaError, match="model_type='t5'"):
        load_gemma(folder)
    (folder / "config.json").write_text(json.dumps({"model_type": "gemma3", "text_config": {}}))
    (folder / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(GemmaError, match="pickle"):
        load_gemma(folder)


def test_wrong_connector_files_are_refused(tmp_path, gemma_ref, proto, hf_folder, ltx2_checkpoint):
    comfy = tmp_path / "gemma.safetensors"
    write_comfy_file(comfy, gemma_ref, proto, "bf16")
    with pytest.raises(LTX2FileError, match="holds no LTX-2 text connector"):
        load_text_connector(comfy, 32)  # Gemma given as the LTX-2 checkpoint
    with pytest.raises(ConnectorConfigError, match="do not belong together"):
        load_text_connector(ltx2_checkpoint[0], 30)  # a Gemma of another width
    truncated = tmp_path / "ltx-2-truncated.safetensors"
    truncated.write_bytes(ltx2_checkpoint[0].read_bytes()[:-500])
    with pytest.raises(LTX2FileError, match="download it again"):
        load_text_connector(truncated, 32)
    other = tiny_gemma3(seed=1, num_hidden_layers=2)
    folder = write_hf_folder(tmp_path / "two_layers", other, proto)
    with pytest.raises(ValueError, match=r"takes 4 hidden states but the Gemma .* gives 3"):
        load_ltx2_text_encoder(folder, ltx2_checkpoint[0], max_length=MAX_LENGTH)
    with pytest.raises(ConnectorConfigError, match="rope_type"):
        ConnectorConfig(rope_type="3d")
    connector = TextConnector(ConnectorConfig(gemma_dim=8, gemma_states=2, heads=2, head_dim=4, registers=8,
                                              layers=1))
    states, mask = _random_states(8, 2, [3], total=4)
    with pytest.raises(ConnectorConfigError, match="not a multiple of the connector's 8 registers"):
        connector(states, mask, length=12)


def test_tokenizer_folder_without_tokenizer_is_refused(tmp_path, proto):
    folder = tmp_path / "tok"
    folder.mkdir()
    with pytest.raises(GemmaTokenizerError, match=r"no tokenizer: expected tokenizer\.json or tokenizer\.model"):
        folder_tokenizer(folder)
    write_hf_tokenizer(folder, proto)
    assert folder_tokenizer(folder)(["a cat"])[0][0, 0] == 2
    with pytest.raises(GemmaTokenizerError, match="not a valid sentencepiece model"):
        sentencepiece_tokenizer(b"not a model", "spiece_model")
