"""Hybridization: an all-attention tiny teacher distilled into a hybrid student, on small world clips."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from aiprod_core.checkpoint import read_safetensors, save_checkpoint
from aiprod_core.cli import main
from aiprod_core.config import preset
from aiprod_core.memory.placement import Placement
from aiprod_core.model import build_model, load_model
from aiprod_core.sampling.loop import sample_latent
from aiprod_core.train.data import item_seed
from aiprod_core.train.distil_data import load_clips
from aiprod_core.train.hybridize import HybridizeOptions, Hybridizer, build_student
from aiprod_core.train.options import RunOptions

TEACHER, STUDENT = "AAAAAA", "AACACA"
REPLACED = [2, 4]
CLIP = (9, 32, 32)  # latents of 3 x 4 x 4 tokens: seconds per run on the CPU


def teacher():
    """A random all-attention tiny model whose output layer is not zero (a fresh one predicts 0 everywhere, which
    any student would match)."""
    cfg = preset("tiny")
    model = build_model(dataclasses.replace(cfg, backbone=dataclasses.replace(cfg.backbone, pattern=TEACHER)), seed=1)
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        model.backbone.proj_out.weight.copy_(torch.randn(model.backbone.proj_out.weight.shape, generator=gen) * 0.05)
    return model


def opts(out, steps=(20, 20), data=None, **run):
    data = {"clips": 6, "heldout": 3, **(data or {})}
    return HybridizeOptions(RunOptions(out, name="student", log_every=1, progress=False, **run), STUDENT,
                            steps_blockwise=steps[0], steps_end_to_end=steps[1], lr=2e-3, batch=2, clip=CLIP, **data)


def rows(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_the_student_keeps_every_teacher_weight_outside_the_replaced_blocks():
    t = teacher()
    student, replaced = build_student(t, STUDENT, seed=3)
    assert replaced == REPLACED
    assert [type(b).__name__ for b in student.backbone.blocks] == ["AttentionBlock"] * 2 + ["ConvBlock", "AttentionBlock",
                                                                                             "ConvBlock", "AttentionBlock"]
    ts, ss = t.backbone.state_dict(), student.backbone.state_dict()
    kept = [k for k in ss if not k.startswith(("blocks.2.", "blocks.4."))]
    assert len(kept) > 20 and all(torch.equal(ss[k], ts[k]) for k in kept)
    # copies, not shared tensors: training the student leaves the teacher as it was
    assert all(ss[k].data_ptr() != ts[k].data_ptr() for k in kept)


@pytest.mark.parametrize(("pattern", "words"), [
    ("AAC", "has 3 blocks but the teacher has 6"),
    ("AAAAAA", "nothing to replace"),
    ("AAXAAA", "holds ['X']"),
    ("CCCCCC", "no attention block"),
])
def test_patterns_that_cannot_be_distilled_are_refused(pattern, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        build_student(teacher(), pattern)


def test_a_conv_block_cannot_become_attention():
    hybrid, _ = build_student(teacher(), STUDENT)
    with pytest.raises(ValueError, match="turns the teacher's conv block 2 into an attention block"):
        build_student(hybrid, "AAAACA")


def test_blockwise_distillation_lowers_the_replaced_blocks_error(tmp_path):
    t = teacher()
    h = Hybridizer(t, opts(tmp_path, steps=(0, 0)))
    h.run()  # draws and keeps the clips; no training
    h.train = load_clips(h.data_path)["heldout"]  # measured on clips it does not train on
    gen = torch.Generator().manual_seed(0)
    fixed = h._batch(h.train, gen, 3)
    with torch.no_grad():
        before = h._blockwise_loss(h.replaced, *fixed).item()
    h2 = Hybridizer(t, opts(tmp_path / "b", steps=(25, 0)))
    h2.run()
    h2.train = h.train
    with torch.no_grad():
        after = h2._blockwise_loss(h2.replaced, *fixed).item()
    print(f"replaced blocks' output MSE: {before:.5f} -> {after:.5f}")
    assert after < 0.6 * before


def test_distillation_lowers_the_velocity_error_and_writes_a_loadable_hybrid(tmp_path):
    t = teacher()
    # stage 2's first steps, at the stage's own warm-up, lift the error above stage 1's before they lower it
    out = Hybridizer(t, opts(tmp_path, steps=(20, 40))).run()
    log = rows(tmp_path)
    start = log[0]["velocity_error"]
    blockwise = [r for r in log if r["stage"] == "blockwise"][-1]["velocity_error"]
    end = [r for r in log if r["stage"] == "end_to_end"][-1]["velocity_error"]
    print(f"velocity error vs the teacher: start {start:.5f}, after block-wise {blockwise:.5f}, "
          f"after end-to-end {end:.5f}")
    assert blockwise < 0.5 * start and end < blockwise
    assert all(set(r) >= {"global_step", "stage", "step", "velocity_error"} for r in log)

    model = load_model(out)
    assert model.config.backbone.pattern == STUDENT and model.config.name == "student"
    ts, ms = t.backbone.state_dict(), model.backbone.state_dict()
    assert all(torch.equal(ms[k], ts[k]) for k in ms if not k.startswith(("blocks.2.", "blocks.4.")))
    # the written student answers as the one the log measured: its error against the teacher, recomputed here
    data = load_clips(tmp_path / "distil_data.safetensors")["heldout"]
    x = data.latents[:1]
    sigma = torch.tensor([0.5])
    noisy = 0.5 * x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        v_t = t.backbone(noisy, sigma, data.context[:1], data.mask[:1])
        v_s = model.backbone(noisy, sigma, data.context[:1], data.mask[:1])
        fresh, _ = build_student(t, STUDENT)
        v_0 = fresh.backbone(noisy, sigma, data.context[:1], data.mask[:1])
    assert F.mse_loss(v_s, v_t) < 0.5 * F.mse_loss(v_0, v_t)
    # and samples
    context, mask = model.text_encoder.encode(["a red circle moving to the left"])
    latent = sample_latent(model.backbone, context, mask, None, None, (1, *x.shape[1:]), steps=3, cfg=1.0, seed=0)
    assert latent.shape == (1, *x.shape[1:]) and torch.isfinite(latent).all()


def test_the_teachers_own_generations_are_made_once_and_distilled_on(tmp_path):
    t = teacher()
    prompts = ("a red circle moving to the left", "un carré bleu qui monte")
    h = Hybridizer(t, opts(tmp_path, steps=(10, 10), data={"prompts": prompts, "clips": 3, "sampler_steps": 4}))
    h.run()
    data = load_clips(h.data_path)
    assert data["train"].captions == [prompts[0], prompts[1], prompts[0]] and len(data["heldout"]) == 3
    # the kept latent is the one the sampling loop makes for that prompt and seed
    context, mask = t.text_encoder.encode([prompts[1]])
    neg, neg_mask = t.text_encoder.encode([""])
    shape = (1, *t.config.vae.latent_shape(*CLIP))
    again = sample_latent(t.backbone, context, mask, neg, neg_mask, shape, steps=4, cfg=3.0, seed=item_seed(0, 0, 1))
    assert torch.allclose(data["train"].latents[1:2], again, atol=1e-5)
    log = rows(tmp_path)
    print(f"teacher generations: velocity error {log[0]['velocity_error']:.5f} -> {log[-1]['velocity_error']:.5f}")
    assert log[-1]["velocity_error"] < 0.5 * log[0]["velocity_error"]


def test_resume_reaches_the_same_weights(tmp_path):
    straight = Hybridizer(teacher(), opts(tmp_path / "a", steps=(4, 4))).run()
    assert Hybridizer(teacher(), opts(tmp_path / "b", steps=(4, 4), stop_after=6, checkpoint_every=2)).run() is None
    state = json.loads(read_safetensors(tmp_path / "b" / "state.safetensors")[1]["aiprod.train_state"])
    assert state["position"] == {"stage": 1, "group": 0, "step": 2, "global_step": 6}
    resumed = Hybridizer(teacher(), opts(tmp_path / "b", steps=(4, 4))).run(resume=True)
    a, b = read_safetensors(straight)[0], read_safetensors(resumed)[0]
    assert a.keys() == b.keys()
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-6
    steps = [r["global_step"] for r in rows(tmp_path / "b")]
    assert steps == list(range(9))  # the start row, then each step once


def _fresh(path):
    return {k: v for k, v in read_safetensors(path)[0].items() if k.startswith(("backbone.blocks.2.", "backbone.blocks.4."))}


def test_streamed_blocks_reach_the_student_of_blocks_in_place(tmp_path):
    """The placed code path (every frozen block streamed, the training ones kept; on the CPU the copies are no-ops,
    the hooks and the checkpointed backward are not) trains the same student."""
    straight = _fresh(Hybridizer(teacher(), opts(tmp_path / "a", steps=(4, 4))).run())
    streamed = _fresh(Hybridizer(teacher(), opts(tmp_path / "s", steps=(4, 4),
                                                 data={"placement": Placement("cpu", "stream")})).run())
    assert max((straight[k] - streamed[k]).abs().max().item() for k in straight) < 1e-6


def test_fresh_blocks_trained_one_at_a_time(tmp_path):
    """Block-wise, each fresh block's loss is its own, so one group at a time trains what all at once does (up to
    Adam's epsilon against the loss's scale); a run stopped in its second group resumes to the same student."""
    together = _fresh(Hybridizer(teacher(), opts(tmp_path / "a", steps=(4, 0))).run())
    grouped = _fresh(Hybridizer(teacher(), opts(tmp_path / "g", steps=(4, 0), data={"group": 1})).run())
    assert max((together[k] - grouped[k]).abs().max().item() for k in together) < 1e-5
    straight = _fresh(Hybridizer(teacher(), opts(tmp_path / "b", steps=(3, 3), data={"group": 1})).run())
    stopped = opts(tmp_path / "c", steps=(3, 3), data={"group": 1}, stop_after=5, checkpoint_every=2)
    assert Hybridizer(teacher(), stopped).run() is None
    state = json.loads(read_safetensors(tmp_path / "c" / "state.safetensors")[1]["aiprod.train_state"])
    assert state["position"] == {"stage": 0, "group": 1, "step": 2, "global_step": 5}
    resumed = _fresh(Hybridizer(teacher(), opts(tmp_path / "c", steps=(3, 3), data={"group": 1})).run(resume=True))
    assert max((straight[k] - resumed[k]).abs().max().item() for k in straight) < 1e-6
    assert [r.get("group") for r in rows(tmp_path / "c") if r["stage"] == "end_to_end"] == [1, 1, 1, 2, 2, 2]


def test_the_command_refuses_a_bad_pattern_in_one_line(tmp_path, capsys):
    path = tmp_path / "teacher.safetensors"
    t = teacher()
    save_checkpoint(path, t.config, {"backbone": t.backbone, "vae": t.vae, "text_encoder": t.text_encoder})
    code = main(["hybridize", "--model", str(path), "--pattern", "AACA", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("aiprod hybridize: error: --pattern 'AACA' has 4 blocks but the teacher has 6")
    assert not (tmp_path / "run" / "state.safetensors").exists()


def test_the_command_writes_a_hybrid(tmp_path, capsys):
    path = tmp_path / "teacher.safetensors"
    t = teacher()
    save_checkpoint(path, t.config, {"backbone": t.backbone, "vae": t.vae, "text_encoder": t.text_encoder})
    out = tmp_path / "run"
    args = ["hybridize", "--model", str(path), "--pattern", "CAAAAA", "--out", str(out), "--steps-blockwise", "2",
            "--steps-end-to-end", "1", "--batch", "1", "-q"]
    assert main(args) == 0
    assert load_model(out / "aiprod-v2-tiny-hybrid.safetensors").config.backbone.pattern == "CAAAAA"
    assert main(args) == 2  # a state is there: starting over would delete it
    assert "add --resume" in capsys.readouterr().err
    # stage 3, a curriculum fine-tune on data, is `aiprod train` on the student
    phases = tmp_path / "phases.json"
    phases.write_text(json.dumps([{"name": "1-still", "steps": 1, "batch": 2, "world": {"frames": 9}}]))
    assert main(["train", "--model", str(out / "aiprod-v2-tiny-hybrid.safetensors"), "--phases", str(phases),
                 "--out", str(tmp_path / "tuned"), "--no-validation", "-q"]) == 0
    tuned = load_model(tmp_path / "tuned" / "aiprod-v2-tiny-hybrid.safetensors")
    assert tuned.config.backbone.pattern == "CAAAAA"


def test_train_builds_an_all_attention_teacher_from_the_preset(tmp_path, capsys):
    """`aiprod train --pattern AAAAAA`: the teacher the shipped model's recipes train, at its width, all attention."""
    out = tmp_path / "teacher"
    assert main(["train", "--pattern", "AAAAAA", "--out", str(out), "--steps-scale", "0.0005", "--no-validation",
                 "-q"]) == 0
    teacher = load_model(out / "aiprod-v2-tiny-AAAAAA.safetensors")
    tiny = preset("tiny")
    assert teacher.config.backbone.pattern == "AAAAAA" and teacher.config.backbone.width == tiny.backbone.width
    assert teacher.config.backbone.attention_blocks == 6 and teacher.config.vae == tiny.vae
    assert main(["train", "--pattern", "AAAAAA", "--lora-rank", "4", "--out", str(tmp_path / "x")]) == 2
    assert "--pattern builds a fresh backbone for full training" in capsys.readouterr().err


def test_train_builds_a_teacher_beside_a_trained_models_vae(tmp_path, capsys):
    """`--pattern` with `--model` and `--reinit backbone,text_encoder`: the teacher trains on the model's VAE."""
    base = tmp_path / "base.safetensors"
    model = build_model(preset("tiny"))
    with torch.no_grad():
        model.vae.latent_mean.add_(0.5)  # a VAE of its own, unlike a fresh preset's
    save_checkpoint(base, model.config, {"backbone": model.backbone, "vae": model.vae,
                                         "text_encoder": model.text_encoder, "upscaler": model.upscaler})
    out = tmp_path / "teacher"
    phases = tmp_path / "phases.json"
    phases.write_text(json.dumps([{"name": "1-still", "steps": 1, "batch": 2, "world": {"frames": 9}}]))
    assert main(["train", "--model", str(base), "--pattern", "AAAAAA", "--reinit", "backbone,text_encoder",
                 "--phases", str(phases), "--out", str(out), "--no-validation", "-q"]) == 0
    teacher = load_model(out / "aiprod-v2-tiny-AAAAAA.safetensors")
    assert teacher.config.backbone.pattern == "AAAAAA"
    assert all(torch.equal(v, model.vae.state_dict()[k]) for k, v in teacher.vae.state_dict().items())
    assert main(["train", "--model", str(base), "--pattern", "AAAAAA", "--out", str(tmp_path / "y")]) == 2
    assert "add --reinit backbone" in capsys.readouterr().err


def test_two_processes_reach_the_student_of_one(tmp_path):
    """Under torchrun each process computes its share of the same batch and the gradients are averaged."""
    import os
    import socket
    import subprocess
    import sys

    path = tmp_path / "teacher.safetensors"
    t = teacher()
    save_checkpoint(path, t.config, {"backbone": t.backbone, "vae": t.vae, "text_encoder": t.text_encoder})
    common = ["hybridize", "--model", str(path), "--pattern", STUDENT, "--steps-blockwise", "3",
              "--steps-end-to-end", "3", "--batch", "2", "--clips", "4", "--clip", "x".join(map(str, CLIP)), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "aiprod_core.cli", *common, "--out", str(tmp_path / "one")], check=True,
                   env=env, capture_output=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                        "127.0.0.1", "--master_port", str(port), "-m", "aiprod_core.cli", *common,
                        "--out", str(tmp_path / "two")], env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    one, _ = read_safetensors(tmp_path / "one" / "aiprod-v2-tiny-hybrid.safetensors")
    two, _ = read_safetensors(tmp_path / "two" / "aiprod-v2-tiny-hybrid.safetensors")
    fresh = [k for k in one if k.startswith(tuple(f"backbone.blocks.{i}." for i in REPLACED))]
    assert fresh and max((one[k] - two[k]).abs().max().item() for k in one) < 1e-4
    assert len(rows(tmp_path / "two")) == len(rows(tmp_path / "one"))  # one log, written once


def test_the_speed_benchmark_compares_the_students_with_all_attention(one_thread):
    """bench/hybrid_speed.py at a tiny grid: every pattern timed, each hybrid's speed-up against all-attention."""
    from bench.hybrid_speed import run

    out = run(preset("tiny"), [(1, 4, 4)], ["ACACAC", "ACCCAC"], threads=1, warmup=0, repeats=1)
    row = out["grids"]["1x4x4"]
    assert out["patterns"]["all_attention"] == "AAAAAA" and row["tokens"] == 16
    assert all(row[n]["s_per_step"] > 0 and row[n]["speedup"] > 0 for n in ("hybrid_ACACAC", "hybrid_ACCCAC"))
