"""A prompt longer than the text encoder reads is never cut in silence: the library says what was kept and
what was dropped, and the CLI and the text node pass that on, with the limit read from the encoder."""

from __future__ import annotations

import dataclasses

import pytest
import sentencepiece as spm
import torch
from safetensors.torch import save_file
from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

from aiprod_core.checkpoint import save_checkpoint
from aiprod_core.cli import main
from aiprod_core.config import TextEncoderConfig, preset
from aiprod_core.model import build_model
from aiprod_core.text import load_text_encoder

LONG_EN = ("a big red circle moving slowly to the left across the whole frame, past a small green triangle, "
           "then a blue square, and one purple square moving down")  # 149 characters
HAN = "红色圆形向左移动" * 8  # 64 characters, 3 bytes each
HINDI = "एक लाल वृत्त बाईं ओर जा रहा है और एक नीला वर्ग ऊपर जा रहा है और एक हरा त्रिभुज नीचे जा रहा है"
MIXED = "Ein roter Kreis — 红色圆形 — एक लाल वृत्त — ü é ß — 🙂 moves left"


def byte_encoder(max_length: int):
    return load_text_encoder(TextEncoderConfig(kind="byte", dim=32, layers=1, heads=4, ff_dim=64, max_length=max_length))


@pytest.mark.parametrize("max_length", [128, 256])
def test_byte_limit_is_the_encoders_context_less_eos(max_length):
    enc = byte_encoder(max_length)
    assert enc.limit == max_length - 1
    prompt = "x" * 300
    t = enc.truncation(prompt)
    assert (t.kept, t.dropped, t.limit, t.used, t.unit) == ("x" * (max_length - 1), "x" * (301 - max_length),
                                                              max_length - 1, 300, "bytes")
    assert not enc.truncation("x" * (max_length - 1)).cut and enc.truncation("x" * max_length).cut


def test_byte_cut_names_the_lost_words_and_is_what_the_encoder_reads():
    enc = byte_encoder(128)
    t = enc.truncation(LONG_EN)
    assert t.cut and t.kept + t.dropped == LONG_EN and len(t.kept) == 127
    assert t.dropped == "ple square moving down"  # "one purple square moving down" loses its end: the bug reported
    # the states the encoder gives the whole prompt are those of the kept text alone: nothing else was read
    full, mask = enc.encode([LONG_EN])
    kept, kept_mask = enc.encode([t.kept])
    assert torch.equal(mask, kept_mask) and torch.equal(full, kept)
    w = t.warning("the prompt")
    assert "149 bytes" in w and "reads 127" in w and "the first 127 of its 149 characters" in w
    assert '"ple square moving down"' in w and "\n" not in w
    pasted = enc.truncation("a red circle moving left. " * 100).warning()  # the start of a long loss, and its size
    # 2600 - 127 characters dropped, the last a space; 100 of them shown: "t. " and three whole phrases and more
    assert pasted.count("a red circle moving left") == 3 and "and 2372 more characters;" in pasted
    short = enc.truncation("a red circle moving left")
    assert not short.cut and short.dropped == "" and short.warning() == ""


@pytest.mark.parametrize("prompt", [HAN, HINDI])
def test_byte_limit_in_three_byte_scripts_is_about_42_characters(prompt):
    # 127 bytes: 42 Han characters at 3 bytes each; Devanagari letters and signs take 3, its spaces 1
    kept_chars = 42 if prompt == HAN else max(n for n in range(len(prompt)) if len(prompt[:n].encode()) <= 127)
    assert 42 <= kept_chars <= 55
    t = byte_encoder(128).truncation(prompt)
    assert len(t.kept) == kept_chars and t.kept + t.dropped == prompt
    assert f"the first {kept_chars} of its {len(prompt)} characters" in t.warning()


def test_byte_cut_never_splits_a_character():
    for max_length in range(2, 90):
        t = byte_encoder(max_length).truncation(MIXED)
        assert t.kept + t.dropped == MIXED
        kept_bytes = len(t.kept.encode())
        assert kept_bytes <= t.limit  # all of it is read
        if t.dropped:  # and the next whole character would not have been
            assert kept_bytes + len(t.dropped[0].encode()) > t.limit


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory) -> bytes:
    """A tiny T5-style sentencepiece model (<pad>=0, </s>=1, <unk>=2), as .model bytes."""
    d = tmp_path_factory.mktemp("spm")
    (d / "corpus.txt").write_text("\n".join([LONG_EN, HAN, HINDI, MIXED] * 3), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(d / "corpus.txt"), model_prefix=str(d / "sp"), vocab_size=120,
                                   hard_vocab_limit=False, model_type="unigram", character_coverage=1.0, pad_id=0,
                                   eos_id=1, unk_id=2, bos_id=-1, normalization_rule_name="identity", minloglevel=2)
    return (d / "sp.model").read_bytes()


def tiny_umt5() -> UMT5EncoderModel:
    torch.manual_seed(0)
    return UMT5EncoderModel(UMT5Config(vocab_size=200, d_model=32, d_kv=8, num_heads=4, num_layers=1, d_ff=48,
                                       feed_forward_proj="gated-gelu", dropout_rate=0.0, is_encoder_decoder=False))


def subword_encoders(tmp_path, spm_model, max_length):
    """The same pieces as ComfyUI's single file (sentencepiece) and as a Hugging Face folder (tokenizers)."""
    model = tiny_umt5()
    sd = {k: v.clone() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    sd["spiece_model"] = torch.frombuffer(bytearray(spm_model), dtype=torch.uint8)
    save_file(sd, str(tmp_path / "umt5.safetensors"))
    folder = tmp_path / "hf"
    model.save_pretrained(folder, safe_serialization=True)
    sp = spm.SentencePieceProcessor(model_proto=spm_model)
    T5Tokenizer(vocab=[(sp.id_to_piece(i), sp.get_score(i)) for i in range(sp.get_piece_size())],
                extra_ids=0).save_pretrained(folder)
    return [load_text_encoder(TextEncoderConfig(kind=kind, dim=32, max_length=max_length, path=str(path)))
            for kind, path in (("umt5_comfy", tmp_path / "umt5.safetensors"), ("t5", folder))]


def test_subword_encoders_count_tokens_and_cut_at_the_longest_prefix_that_fits(tmp_path, spm_model):
    for enc in subword_encoders(tmp_path, spm_model, max_length=12):
        assert enc.limit == 11
        assert enc.truncation(LONG_EN).cut and not enc.truncation("a red circle").cut
        for prompt in (LONG_EN, HAN, HINDI, MIXED):
            t = enc.truncation(prompt)
            _, mask = enc.tokenize([prompt])
            assert t.unit == "tokens" and t.used == enc.count_tokens(prompt) and t.kept + t.dropped == prompt
            assert t.cut == (t.used > 11) and int(mask.sum()) == min(t.used, 11) + 1  # what it reads, then EOS
            if t.cut:
                assert enc.count_tokens(t.kept) <= 11 < enc.count_tokens(prompt[: len(t.kept) + 1])
                assert f"the {enc.kind} text encoder reads 11" in t.warning()


def test_text_node_shows_the_warning(node):
    te = node("AIPRODCheckpointLoader").load("tiny.safetensors")[2]
    short = node("AIPRODTextEncode").encode(te, "a red circle moving left")
    assert short["ui"]["text"] == ["Latin"]
    long = node("AIPRODTextEncode").encode(te, LONG_EN)
    script, warning = long["ui"]["text"]
    assert script == "Latin"
    assert f"reads {te.limit}" in warning and '"ple square moving down"' in warning
    # the conditioning is still made, from what the encoder read
    (cond,) = long["result"]
    assert cond[0][1]["attention_mask"].sum() == te.max_length


def clip_args(tmp_path, name="c.mp4"):
    return ["-o", str(tmp_path / name), "--steps", "1", "--frames", "5", "--height", "32", "--width", "32", "-q"]


def test_cli_warns_for_the_prompt_and_the_negative(tmp_path, capsys):
    negative = "blurry, " * 20
    assert main(["generate", LONG_EN, "--negative", negative, *clip_args(tmp_path)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("aiprod generate: warning: ") for line in err)
    assert "the prompt is 149 bytes long" in err[0] and '"ple square moving down"' in err[0]
    assert err[1].startswith("aiprod generate: warning: --negative is 160 bytes long")
    assert (tmp_path / "c.mp4").is_file()
    # without guidance the negative prompt is not read, so it is not reported
    assert main(["generate", "a red circle", "--negative", negative, "--cfg", "1", *clip_args(tmp_path)]) == 0
    assert capsys.readouterr().err == ""


def test_cli_reads_the_limit_from_the_model(tmp_path, capsys):
    """A model whose encoder reads 256 bytes (the byte encoder has relative positions, so the same weights
    read further): a 200-byte prompt is read whole, a 300-byte one is cut at 255."""
    model = build_model(preset("tiny"))
    config = dataclasses.replace(model.config, text=dataclasses.replace(model.config.text, max_length=256))
    path = tmp_path / "long.safetensors"
    save_checkpoint(path, config, {"backbone": model.backbone, "vae": model.vae, "text_encoder": model.text_encoder})
    assert main(["generate", "x" * 200, "--model", str(path), *clip_args(tmp_path)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["generate", "x" * 300, "--model", str(path), *clip_args(tmp_path)]) == 0
    assert "the prompt is 300 bytes long, but the byte text encoder reads 255" in capsys.readouterr().err
