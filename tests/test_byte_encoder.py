"""The byte model's own T5 encoder and ByT5 tokenization, checked against transformers', and the command that
no longer imports transformers for them."""

import subprocess
import sys

import torch
from transformers import ByT5Tokenizer, T5Config, T5EncoderModel

from aiprod_core.config import TextEncoderConfig, preset
from aiprod_core.model import load_model
from aiprod_core.text.byte import ByteTextEncoder, byte_t5_config
from aiprod_core.text.t5_encoder import T5Encoder
from aiprod_core.text.tokenizer import ByteTokenizer, HFTokenizer
from aiprod_core.world import LANGUAGES, captioned_scene

CFG = TextEncoderConfig(kind="byte", dim=48, heads=4, layers=3, ff_dim=96, max_length=40)


def hf_model(cfg: TextEncoderConfig) -> T5EncoderModel:
    c = byte_t5_config(cfg)
    return T5EncoderModel(T5Config(
        vocab_size=c.vocab_size, d_model=c.d_model, d_kv=c.d_kv, num_heads=c.num_heads, num_layers=c.num_layers,
        d_ff=c.d_ff, feed_forward_proj="gated-gelu", dropout_rate=0.0, is_encoder_decoder=False, use_cache=False,
        tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
    )).eval()


def world_prompts(n: int = 96) -> list[str]:
    return [captioned_scene(i, language=LANGUAGES[i % len(LANGUAGES)], split=("train", "heldout")[i % 2])[2]
            for i in range(n)]


def test_byte_tokens_are_transformers_byt5_tokens():
    prompts = [*world_prompts(), "", "x" * 300, "é" * 100, "一个绿色的三角形" * 10]
    ours, theirs = ByteTokenizer(), HFTokenizer(ByT5Tokenizer())
    for max_length in (16, 128):
        for a, b in zip(ours(prompts, max_length), theirs(prompts, max_length)):
            assert torch.equal(a, b)
    # transformers reads special tokens spelled out in a prompt as those tokens; bytes stay bytes here
    assert ours(["</s>"], 16)[0].tolist() == [[c + 3 for c in b"</s>"] + [1]]


def test_the_encoder_computes_what_transformers_t5_computes():
    torch.manual_seed(0)
    theirs = hf_model(CFG)
    for p in theirs.parameters():  # T5 initialises layer norms to 1: make them matter
        p.data.add_(0.1 * torch.randn_like(p))
    ours = T5Encoder(byte_t5_config(CFG)).eval()
    ours.load_state_dict(theirs.state_dict())
    ids, mask = ByteTokenizer()(["a red circle", "un carré bleu qui monte vite", "赤い"], CFG.max_length)
    with torch.no_grad():
        a = ours(ids, mask.long())
        b = theirs(input_ids=ids, attention_mask=mask.long()).last_hidden_state
    assert torch.allclose(a[mask], b[mask], atol=1e-5), (a - b)[mask].abs().max()
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())  # checkpoints and LoRA keys read the same


def test_a_fresh_encoder_draws_transformers_initial_weights_from_the_seeded_stream():
    torch.manual_seed(3)
    ours = ByteTextEncoder(CFG).model.state_dict()
    after_ours = torch.rand(4)
    torch.manual_seed(3)
    theirs = hf_model(CFG).state_dict()
    after_theirs = torch.rand(4)
    assert all(torch.equal(v, theirs[k]) for k, v in ours.items())
    assert torch.equal(after_ours, after_theirs)  # what is built next starts where it always did


def test_loading_the_model_leaves_the_random_state_alone():
    torch.manual_seed(5)
    before = torch.get_rng_state()
    load_model()
    assert torch.equal(torch.get_rng_state(), before)


def test_the_command_does_not_import_transformers_for_the_byte_model(tmp_path):
    # the memory plan (what a GPU run makes first) counts the encoder's parameters: that needs no transformers
    code = ("import sys; from aiprod_core.cli import main; "
            f"main(['generate', 'a red circle', '-o', r'{tmp_path / 'c.mp4'}', '--frames', '5', '--steps', '2', '-q']); "
            "from aiprod_core.info import model_config; from aiprod_core.memory.plan import plan_memory; "
            "plan_memory(model_config(), 64, 64, 17, 8.0); "
            "print(sorted(m for m in ('transformers', 'torch._dynamo') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout


def test_the_shipped_encoder_is_the_byte_model():
    assert preset("tiny").text.kind == "byte" and isinstance(load_model().text_encoder.model, T5Encoder)
