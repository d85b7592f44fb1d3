import pytest
import torch
from safetensors.torch import load_file

from aiprod_core.config import BackboneConfig, preset
from aiprod_core.models.backbone import HybridBackbone
from aiprod_core.models.lora import LoRA, LoRAError, apply_loras, load_lora, save_lora


def backbone(width=64, seed=0):
    torch.manual_seed(seed)
    cfg = preset("tiny").backbone
    cfg = BackboneConfig(**{**cfg.__dict__, "width": width, "heads": 2})
    m = HybridBackbone(cfg).eval()
    torch.nn.init.normal_(m.proj_out.weight, std=0.02)  # zero-initialised head would hide every change
    return m


def inputs(m):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, 2, 4, 4, generator=g)
    ctx = torch.randn(1, 5, m.cfg.text_dim, generator=g)
    return x, torch.tensor([0.5]), ctx, torch.ones(1, 5, dtype=torch.bool)


def trained_lora(m, rank=4):
    lora = LoRA.create(m, rank=rank, alpha=2 * rank)
    torch.manual_seed(3)
    for p in lora.parameters():
        p.data.normal_(0, 0.05)
    return lora


def test_apply_changes_the_output_and_removal_restores_it():
    m = backbone()
    args = inputs(m)
    with torch.no_grad():
        before = m(*args)
        lora = trained_lora(m)
        with apply_loras(m, [(lora, 1.0)]):
            during = m(*args)
        after = m(*args)
        with apply_loras(m, [(lora, 0.0)]):
            zero = m(*args)
    assert not torch.allclose(before, during, atol=1e-5)
    assert torch.equal(before, after) and torch.equal(before, zero)


def test_new_lora_is_the_identity_and_targets_attention_and_mlp():
    m = backbone()
    lora = LoRA.create(m, rank=4)
    assert any(p.endswith("attn1.to_q") for p in lora.paths) and any(p.endswith("ff.proj_out") for p in lora.paths)
    assert any(p.startswith("blocks.1.") and "ff" in p for p in lora.paths)  # conv blocks are adapted too
    with torch.no_grad(), apply_loras(m, [(lora, 1.0)]):
        assert torch.equal(m(*inputs(m)), backbone()(*inputs(m)))


def test_strength_scales_the_delta_of_a_layer():
    lin = torch.nn.Sequential(torch.nn.Linear(8, 8))
    lora = LoRA.create(lin, rank=2, targets=("0",))
    torch.nn.init.normal_(lora["0"].lora_B.weight)
    x = torch.randn(3, 8)
    with torch.no_grad():
        base = lin(x)
        with apply_loras(lin, [(lora, 1.0)]):
            one = lin(x)
        with apply_loras(lin, [(lora, 2.5)]):
            more = lin(x)
        with apply_loras(lin, [(lora, 1.0), (lora, 1.5)]):
            stacked = lin(x)
    assert torch.allclose(more - base, 2.5 * (one - base), atol=1e-5)
    assert torch.allclose(stacked, more, atol=1e-5)


def test_file_round_trip_in_comfy_layout(tmp_path):
    m = backbone()
    lora = trained_lora(m)
    p = tmp_path / "my_lora.safetensors"
    save_lora(p, lora, {"aiprod.base_model": "tiny"})
    sd = load_file(str(p))
    k = "diffusion_model.blocks.0.attn1.to_q"
    assert sd[f"{k}.lora_A.weight"].shape == (4, 64) and sd[f"{k}.lora_B.weight"].shape == (64, 4)
    assert sd[f"{k}.alpha"].item() == 8.0
    loaded, meta = load_lora(p, m)
    assert meta["aiprod.base_model"] == "tiny"
    with torch.no_grad():
        with apply_loras(m, [(lora, 0.7)]):
            a = m(*inputs(m))
        with apply_loras(m, [(loaded, 0.7)]):
            b = m(*inputs(m))
    assert torch.equal(a, b)


def test_lora_for_another_model_is_refused(tmp_path):
    p = tmp_path / "wide.safetensors"
    save_lora(p, trained_lora(backbone(width=96)))
    with pytest.raises(LoRAError, match="does not fit this model") as e:
        load_lora(p, backbone(width=64))
    assert "trained for another model" in str(e.value) and str(p) in str(e.value)
    bad = tmp_path / "notlora.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(bad))
    with pytest.raises(LoRAError, match="expected a LoRA in the diffusion_model"):
        load_lora(bad, backbone())


def test_gradients_reach_only_the_adapters():
    m = backbone()
    for p in m.parameters():
        p.requires_grad_(False)
    lora = LoRA.create(m, rank=2)
    x, s, ctx, mask = inputs(m)
    with apply_loras(m, [(lora, 1.0)]):
        m(x, s, ctx, mask).square().mean().backward()
    grads = [p.grad for p in lora.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in m.parameters())


def base_file(tmp_path):
    """A small random-init model file with a non-zero output layer (a zero one passes no gradient to a LoRA)."""
    import dataclasses

    from aiprod_core.checkpoint import save_checkpoint
    from aiprod_core.model import build_model

    cfg = dataclasses.replace(preset("tiny"), upscaler=None)
    model = build_model(cfg, seed=1)
    torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.02)
    path = tmp_path / "base.safetensors"
    save_checkpoint(path, cfg, {"backbone": model.backbone, "vae": model.vae, "text_encoder": model.text_encoder})
    return path


def test_train_command_adapts_only_the_named_targets(tmp_path):
    import json

    from aiprod_core.cli import main

    base = base_file(tmp_path)
    phases = tmp_path / "p.json"
    phases.write_text(json.dumps([{"name": "p", "steps": 2, "batch": 1, "warmup": 1,
                                   "world": {"frames": 5, "height": 32, "width": 32}}]))
    args = ["train", "--model", str(base), "--lora-rank", "2", "--phases", str(phases), "--no-validation", "-q",
            "--checkpoint-every", "0"]
    assert main([*args, "--out", str(tmp_path / "run"), "--lora-targets", "attn2.to_k, attn2.to_v"]) == 0
    keys = load_file(tmp_path / "run" / "lora.safetensors")
    adapted = {".".join(k.split(".lora_")[0].split(".")[-2:]) for k in keys if ".lora_" in k}
    assert adapted == {"attn2.to_k", "attn2.to_v"}
    assert main([*args, "--out", str(tmp_path / "bad"), "--lora-targets", "attn9.to_q"]) == 2  # clear error, no crash


def test_bypassed_lora_answers_as_the_base_model_until_the_block_ends():
    m = backbone()
    args = inputs(m)
    lora = trained_lora(m)
    with torch.no_grad():
        base = m(*args)
        with apply_loras(m, [(lora, 1.0)]):
            with lora.bypassed():
                bypassed = m(*args)
            adapted = m(*args)
    assert torch.equal(bypassed, base)
    assert not torch.allclose(adapted, base, atol=1e-5)


def test_preservation_prompts_keep_the_lora_near_the_base_model_on_them(tmp_path):
    """Two LoRAs from the same seed and data; the one trained with --preserve-prompts changes the base model's
    answer to those prompts less. Its first step's preservation loss is zero (a new LoRA is the identity)."""
    import json

    from aiprod_core.cli import main
    from aiprod_core.model import load_model

    base = base_file(tmp_path)
    phases = tmp_path / "p.json"
    phases.write_text(json.dumps([{"name": "p", "steps": 6, "batch": 2, "warmup": 1, "lr": 3e-3,
                                   "world": {"frames": 5, "height": 32, "width": 32}}]))
    prompts = ["a green circle moving up", "un carré rouge immobile", "一个蓝色的三角形向左移动"]
    (tmp_path / "keep.txt").write_text("\n".join(prompts) + "\n\n", encoding="utf-8")
    args = ["train", "--model", str(base), "--lora-rank", "4", "--phases", str(phases), "--no-validation", "-q",
            "--checkpoint-every", "0", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert main([*args, "--out", str(tmp_path / "kept"), "--preserve-prompts", str(tmp_path / "keep.txt"),
                 "--preserve-weight", "20"]) == 0
    log = [json.loads(line) for line in (tmp_path / "kept" / "log.jsonl").read_text().splitlines()]
    assert log[0]["preserve"] == 0.0 and max(r["preserve"] for r in log) > 0

    m = load_model(base)
    ctx, mask = m.text_encoder.encode(prompts)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(len(prompts), 16, 2, 4, 4, generator=g)
    sigma = torch.full((len(prompts),), 0.9)

    def change(run):
        lora, _ = load_lora(tmp_path / run / "lora.safetensors", m.backbone)
        with torch.no_grad():
            before = m.backbone(x, sigma, ctx, mask)
            with apply_loras(m.backbone, [(lora, 1.0)]):
                return float((m.backbone(x, sigma, ctx, mask) - before).square().mean())

    assert change("kept") < 0.5 * change("plain")

    (tmp_path / "empty.txt").write_text("\n  \n", encoding="utf-8")
    assert main([*args, "--out", str(tmp_path / "e"), "--preserve-prompts", str(tmp_path / "empty.txt")]) == 2
    full = ["train", "--preset", "tiny", "--phases", str(phases), "--no-validation", "-q", "--out", str(tmp_path / "f"),
            "--preserve-prompts", str(tmp_path / "keep.txt")]
    assert main(full) == 2  # full training has no base model to keep


def test_text_encoder_adapters_train_save_and_apply(tmp_path):
    """--lora-text-encoder: the file carries text_encoder.* adapters that training moved; the adapted encoder shares
    the base encoder's weights, gives what the hooks give under a cache key of its own (which follows the adapters),
    and leaves the base encoder answering as before."""
    import json

    from aiprod_core.checkpoint import read_safetensors
    from aiprod_core.cli import main
    from aiprod_core.model import load_model
    from aiprod_core.models.lora import TEXT_TARGETS, text_lora_from
    from aiprod_core.text.lora import adapted_text_encoder

    base = base_file(tmp_path)
    phases = tmp_path / "p.json"
    phases.write_text(json.dumps([{"name": "p", "steps": 3, "batch": 2, "warmup": 1, "lr": 3e-3,
                                   "world": {"frames": 5, "height": 32, "width": 32}}]))
    (tmp_path / "keep.txt").write_text("a green circle moving up\n", encoding="utf-8")
    assert main(["train", "--model", str(base), "--lora-rank", "4", "--phases", str(phases), "--no-validation", "-q",
                 "--checkpoint-every", "0", "--out", str(tmp_path / "run"), "--lora-text-encoder",
                 "--preserve-prompts", str(tmp_path / "keep.txt")]) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert log[0]["preserve"] == 0.0  # new adapters, text and backbone alike, change nothing

    sd, meta = read_safetensors(tmp_path / "run" / "lora.safetensors")
    assert "DenseReluDense.wo" in meta["aiprod.text_targets"]
    m = load_model(base)
    text_lora = text_lora_from(sd, m.text_encoder)
    assert text_lora is not None and text_lora.prefix == "text_encoder."
    assert any(text_lora[p].lora_B.weight.abs().max() > 0 for p in text_lora.paths)  # trained away from zero
    load_lora(tmp_path / "run" / "lora.safetensors", m.backbone)  # the backbone part loads as before

    prompts = ["a red square moving left", "un cercle bleu"]
    before = {k: v.clone() for k, v in m.text_encoder.state_dict().items()}
    base_ctx, _ = m.text_encoder.encode(prompts)
    adapted = m.with_text_loras([(text_lora, 1.0)])
    adapted_ctx, _ = adapted.text_encoder.encode(prompts)
    with apply_loras(m.text_encoder, [(text_lora, 1.0)]):
        hooked_ctx, _ = m.text_encoder.encode(prompts)
    assert torch.equal(adapted_ctx, hooked_ctx)
    assert not torch.allclose(adapted_ctx, base_ctx, atol=1e-4)
    assert torch.equal(m.text_encoder.encode(prompts)[0], base_ctx)  # the hooks are gone after each forward
    assert adapted.text_encoder.model is m.text_encoder.model and adapted.backbone is m.backbone  # nothing copied
    assert all(torch.equal(v, m.text_encoder.state_dict()[k]) for k, v in before.items())
    key = adapted.text_encoder.key
    assert key.startswith(m.text_encoder.key) and key != m.text_encoder.key
    assert m.with_text_loras([(text_lora, 0.5)]).text_encoder.key != key
    with torch.no_grad():
        text_lora[text_lora.paths[0]].lora_B.weight.add_(0.01)  # trained further
    assert adapted.text_encoder.key != key
    # two LoRA loaders in a row: the second adapts the first's output, and both apply
    other = LoRA.create(m.text_encoder, 2, targets=TEXT_TARGETS, prefix="text_encoder.")
    for p in other.parameters():
        torch.nn.init.normal_(p, std=0.05)
    both = adapted_text_encoder(adapted.text_encoder, [(other, 0.7)])
    with apply_loras(m.text_encoder, [(text_lora, 1.0), (other, 0.7)]):
        hooked_both, _ = m.text_encoder.encode(prompts)
    assert torch.equal(both.encode(prompts)[0], hooked_both)
    assert both.key.startswith(m.text_encoder.key + "+lora:") and both.key != adapted.text_encoder.key
    assert m.with_text_loras([(None, 1.0), (text_lora, 0.0)]) is m

    # a state with text adapters does not resume a run without them: the reason, not an optimizer error
    assert main(["train", "--model", str(base), "--lora-rank", "4", "--phases", str(phases), "--no-validation", "-q",
                 "--out", str(tmp_path / "run"), "--resume"]) == 2


def test_preservation_target_reads_the_base_encoders_embedding():
    """With text-encoder adapters, the preservation target is the base backbone on the base encoder's embedding:
    an identity backbone LoRA still has something to undo when the adapted embedding differs."""
    from aiprod_core.train.objectives import output_preservation_loss

    m = backbone()
    x, sigma, ctx, mask = inputs(m)
    lora = LoRA.create(m, rank=2)  # the identity change
    with apply_loras(m, [(lora, 1.0)]):
        assert output_preservation_loss(m, lora, x, sigma, ctx, mask).item() == 0.0
        assert output_preservation_loss(m, lora, x, sigma, ctx, mask, base_context=ctx + 0.5).item() > 0
