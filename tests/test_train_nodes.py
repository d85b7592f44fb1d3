"""The dataset and LoRA trainer nodes, run as ComfyUI runs them: real training, real files in models/loras."""

import json

import pytest
import torch
from safetensors.torch import load_file

from aiprod_core.video_io import write_video
from aiprod_core.world import WorldSpec, make_clip

STEPS = 6


@pytest.fixture(scope="module")
def loaded(pack, one_thread, node):
    pkg, _ = pack
    model, vae, te, _ = node("AIPRODCheckpointLoader").load("tiny.safetensors")
    (world,) = node("AIPRODVideoDataset").load("synthetic world", "", "star", 5, 32, 32)
    return pkg, model, vae, te, world


def train(pkg, model, vae, te, data, name, **kw):
    args = dict(steps=STEPS, rank=2, learning_rate=1e-3, seed=3, name=name, resume=True)
    return pkg.NODE_CLASS_MAPPINGS["AIPRODLoraTrainer"]().train(model, vae, te, data, **{**args, **kw})


def test_trainer_saves_a_lora_the_loader_lists(loaded, pack, node):
    pkg, model, vae, te, world = loaded
    out = train(pkg, model, vae, te, world, "star_test")
    lora_model, curve, name, same_te = out["result"]
    assert name == "star_test.safetensors" and same_te is te  # the text encoder stays as it is by default
    assert name in pkg.NODE_CLASS_MAPPINGS["AIPRODLoraLoader"].INPUT_TYPES()["required"]["lora_name"][0]
    sd = load_file(pack[1] / "loras" / name)
    assert any(k.startswith("diffusion_model.") and k.endswith(".lora_A.weight") for k in sd)
    assert len(lora_model.loras) == 1 and lora_model.backbone is model.backbone
    assert curve.ndim == 4 and curve.shape[0] == 1 and curve.shape[-1] == 3 and curve.std() > 0  # a drawn plot
    # the trained LoRA changes what the sampler makes
    (cond,) = node("AIPRODTextEncode").encode(te, "a red star moving up")["result"]
    (latent,) = node("AIPRODEmptyLatentVideo").make(vae, 32, 32, 5, 1)
    a = node("AIPRODSampler").sample(model, cond, cond, latent, 0, 2, 1.0, "euler", 0.0, 1.0)[0]["samples"]
    b = node("AIPRODSampler").sample(lora_model, cond, cond, latent, 0, 2, 1.0, "euler", 0.0, 1.0)[0]["samples"]
    assert not torch.allclose(a, b)


def test_trainer_with_the_text_encoder_returns_the_adapted_encoder(loaded, pack, node):
    """train_text_encoder: the file has text_encoder.* adapters; the trainer's text_encoder output and the LoRA
    loader's, given the base encoder, read prompts alike and otherwise than the base encoder."""
    pkg, model, vae, te, world = loaded
    _, _, name, adapted = train(pkg, model, vae, te, world, "star_te", train_text_encoder=True,
                                learning_rate=1e-2)["result"]
    sd = load_file(pack[1] / "loras" / name)
    assert any(k.startswith("text_encoder.") for k in sd)
    _, loaded_te = node("AIPRODLoraLoader").load(model, name, 1.0, te)
    prompt = "a red star moving up"
    base, via_trainer, via_loader = (node("AIPRODTextEncode").encode(t, prompt)["result"][0][0][0]
                                     for t in (te, adapted, loaded_te))
    assert torch.allclose(via_trainer, via_loader, atol=1e-5) and not torch.allclose(base, via_trainer, atol=1e-4)
    assert node("AIPRODLoraLoader").load(model, name, 0.0, te)[1] is te


class InterruptProcessingError(Exception):
    """What ComfyUI raises from its progress hook after POST /interrupt."""


def test_interrupt_saves_and_resume_matches_an_uninterrupted_run(loaded, pack, monkeypatch):
    pkg, model, vae, te, world = loaded
    train(pkg, model, vae, te, world, "whole")
    calls = {"n": 0}

    def interrupt_at_third_step():
        calls["n"] += 1
        if calls["n"] == 3:
            raise InterruptProcessingError

    monkeypatch.setattr(pkg.nodes.host, "check_interrupt", interrupt_at_third_step)
    with pytest.raises(InterruptProcessingError):
        train(pkg, model, vae, te, world, "split")
    run = pkg.nodes.host.output_dir() / "aiprod-train" / "split"
    assert (run / "state.safetensors").is_file() and not (pack[1] / "loras" / "split.safetensors").exists()
    steps = [json.loads(r)["global_step"] for r in (run / "log.jsonl").read_text().splitlines()]
    assert max(steps) <= 3
    train(pkg, model, vae, te, world, "split")  # queued again: resumes at step 3
    whole, split = load_file(pack[1] / "loras" / "whole.safetensors"), load_file(pack[1] / "loras" / "split.safetensors")
    assert whole.keys() == split.keys()
    for k in whole:
        torch.testing.assert_close(split[k], whole[k], rtol=1e-4, atol=1e-6)


def test_trainer_on_a_folder_of_clips(loaded, pack, tmp_path, node):
    pkg, model, vae, te, _ = loaded
    folder = pkg.nodes.host.input_dir() / "stars"
    folder.mkdir(parents=True, exist_ok=True)
    spec = WorldSpec(frames=5, height=32, width=32, shapes=("star",))
    for i in range(3):
        clip = make_clip(i, spec)
        write_video(folder / f"{i}.mp4", clip.frames, fps=8)
        (folder / f"{i}.txt").write_text(clip.caption, encoding="utf-8")
    (folder / "broken.mp4").write_bytes(b"not a video")
    (folder / "broken.txt").write_text("a broken clip")
    (data,) = node("AIPRODVideoDataset").load("folder", "stars", "", 5, 32, 32)
    lora_model, _, name, _ = train(pkg, model, vae, te, data, "folder_lora", steps=2)["result"]
    assert (pack[1] / "loras" / name).is_file() and len(lora_model.loras) == 1


def test_preservation_prompts_reach_the_trainer(loaded, pack):
    pkg, model, vae, te, world = loaded
    train(pkg, model, vae, te, world, "kept_lora", steps=3, preserve_prompts="a red circle moving up\n\nun carré bleu\n")
    run = pkg.nodes.host.output_dir() / "aiprod-train" / "kept_lora"
    assert json.loads((run / "settings.json").read_text())["preserve_prompts"] == ["a red circle moving up", "un carré bleu"]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert all("preserve" in row for row in log) and log[0]["preserve"] == 0.0


def test_precision_reaches_the_trainer(loaded, pack):
    pkg, model, vae, te, world = loaded
    train(pkg, model, vae, te, world, "bf16_lora", steps=2, precision="bf16")
    run = pkg.nodes.host.output_dir() / "aiprod-train" / "bf16_lora"
    assert json.loads((run / "settings.json").read_text())["precision"] == "bf16"
    with pytest.raises(ValueError, match="precision"):
        train(pkg, model, vae, te, world, "fp16_lora", steps=2, precision="fp16")


def test_bad_training_inputs_say_what_to_change(loaded, pack, node):
    pkg, model, vae, te, world = loaded
    ds = node("AIPRODVideoDataset")
    (pkg.nodes.host.input_dir() / "empty").mkdir(parents=True, exist_ok=True)
    with pytest.raises(ValueError, match="no captioned clips"):
        ds.load("folder", "empty", "", 5, 32, 32)
    with pytest.raises(FileNotFoundError, match="not found"):
        ds.load("folder", "nowhere", "", 5, 32, 32)
    with pytest.raises(ValueError, match="no absolute path"):
        ds.load("folder", "../outside", "", 5, 32, 32)
    with pytest.raises(ValueError, match="hexagon"):
        ds.load("synthetic world", "", "star, hexagon", 5, 32, 32)
    with pytest.raises(ValueError, match="1 \\+ 4k"):
        ds.load("synthetic world", "", "star", 6, 32, 32)
    with pytest.raises(ValueError, match="letters, digits"):
        train(pkg, model, vae, te, world, "../escape")
    with pytest.raises(ValueError, match="JSON phase list"):
        train(pkg, model, vae, te, world, "bad_phases", phases="[{")
