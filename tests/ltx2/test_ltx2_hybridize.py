"""`aiprod hybridize` on an LTX-2 teacher: tiny random files in the released layout, LTX-2's block structure at a
reduced width. The student's velocity error against the teacher falls, and its file, the teacher's with the
transformer replaced, loads and samples beside the same Gemma."""

from __future__ import annotations

import json

import pytest
import torch
from ltx2_model_files import CLIP, write_model
from safetensors import safe_open

from aiprod_core.cli import main
from aiprod_core.families.ltx2.transformer import ConvBlock, TransformerBlock
from aiprod_core.model import load_model
from aiprod_core.pipeline import generate

pytest.importorskip("ltx_core", reason="the files are written from ltx-core 1.0.0's modules")
SIZE = f"{CLIP['frames']}x{CLIP['height']}x{CLIP['width']}"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ltx2_hybrid")
    files = write_model(root / "model").single
    out = root / "run"
    args = ["hybridize", "--model", files["path"], "--text-encoder", files["text_encoder"], "--pattern", "AC",
            "--out", str(out), "--clip", SIZE, "--steps-blockwise", "20", "--steps-end-to-end", "20", "--clips", "6",
            "--batch", "2", "-q"]
    assert main(args) == 0
    return files, out


def test_distillation_lowers_the_students_velocity_error(run):
    _, out = run
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    start, end = rows[0]["velocity_error"], rows[-1]["velocity_error"]
    assert rows[0]["stage"] == "start" and rows[-1]["stage"] == "end_to_end"
    assert end < 0.7 * start, (start, end)


def test_the_student_file_is_the_teachers_with_a_hybrid_transformer_and_samples(run, capsys):
    files, out = run
    path = out / "ltx-2-19b-dev-hybrid.safetensors"
    with safe_open(str(path), "pt") as f:
        config = json.loads(f.metadata()["config"])
        keys = set(f.keys())
    assert config["transformer"]["aiprod_pattern"] == "AC" and "vae" in config
    assert any(k.startswith("vae.") for k in keys), "the teacher's VAE travels with the student"
    assert "model.diffusion_model.transformer_blocks.1.conv.weight" in keys
    assert not any(k.startswith("model.diffusion_model.transformer_blocks.1.attn1.") for k in keys)
    teacher, student = load_model(**files), load_model(path=str(path), text_encoder=files["text_encoder"])
    blocks = student.backbone.transformer_blocks
    assert isinstance(blocks[0], TransformerBlock) and isinstance(blocks[1], ConvBlock)
    kept = teacher.backbone.transformer_blocks[0].state_dict()
    assert all(torch.equal(v, blocks[0].state_dict()[k]) for k, v in kept.items())
    assert main(["info", "--model", str(path), "--text-encoder", files["text_encoder"]]) == 0
    assert "pattern=AC" in capsys.readouterr().out
    video = generate(student, "a red ball rolls to the left", frames=CLIP["frames"], height=CLIP["height"],
                     width=CLIP["width"], steps=2, seed=0, progress=False)
    assert video.shape == (CLIP["frames"], CLIP["height"], CLIP["width"], 3) and video.std() > 0


def test_planned_and_streamed_runs_train_the_same_student(run, tmp_path, capsys):
    """--vram plans the placement (here on the CPU, where copies are no-ops) and --offload stream streams every
    teacher block but the fresh one, which trains: the student is the one trained in place. A budget nothing fits
    is refused before any work."""
    files, _ = run
    common = ["hybridize", "--model", files["path"], "--text-encoder", files["text_encoder"], "--pattern", "AC",
              "--clip", SIZE, "--steps-blockwise", "3", "--steps-end-to-end", "3", "--clips", "4", "--batch", "2", "-q"]
    students = {}
    for name, extra in (("in_place", []), ("planned", ["--vram", "0.02"]), ("streamed", ["--offload", "stream"])):
        assert main([*common, *extra, "--out", str(tmp_path / name)]) == 0
        with safe_open(str(tmp_path / name / "ltx-2-19b-dev-hybrid.safetensors"), "pt") as f:
            students[name] = {k: f.get_tensor(k) for k in f.keys() if ".transformer_blocks.1." in k}  # noqa: SIM118
    assert "memory plan: 1 fresh blocks, 1 at a time" in capsys.readouterr().err
    for name in ("planned", "streamed"):
        assert max((students[name][k] - v).abs().max().item() for k, v in students["in_place"].items()) < 1e-5
    assert main([*common, "--vram", "0.001", "--out", str(tmp_path / "small")]) == 2
    assert "does not fit 0.001 GB even 1 fresh block(s) at a time" in capsys.readouterr().err


def test_the_teachers_own_generations_are_distilled_on(run, tmp_path):
    """--prompts: the LTX-2 teacher samples its own clips (LTX-2's schedule and guidance), kept in the run folder."""
    from aiprod_core.train.distil_data import load_clips

    files, _ = run
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red ball rolls to the left\na blue cube\n", encoding="utf-8")
    out = tmp_path / "gen"
    assert main(["hybridize", "--model", files["path"], "--text-encoder", files["text_encoder"], "--pattern", "AC",
                 "--clip", SIZE, "--prompts", str(prompts), "--clips", "3", "--steps-blockwise", "10",
                 "--steps-end-to-end", "10", "--batch", "2", "--out", str(out), "-q"]) == 0
    data = load_clips(out / "distil_data.safetensors")
    assert data["train"].captions == ["a red ball rolls to the left", "a blue cube", "a red ball rolls to the left"]
    assert torch.isfinite(data["train"].latents).all() and data["train"].latents.std() > 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["velocity_error"] < rows[0]["velocity_error"]


def test_what_an_ltx2_teacher_cannot_do_is_refused_in_one_line(run, tmp_path, capsys):
    files, _ = run
    common = ["hybridize", "--model", files["path"], "--text-encoder", files["text_encoder"], "--clip", SIZE]
    assert main([*common, "--pattern", "ACA", "--out", str(tmp_path / "a")]) == 2
    assert "has 3 blocks but the teacher has 2" in capsys.readouterr().err
    assert main([*common[:-2], "--clip", "8x64x64", "--pattern", "AC", "--out", str(tmp_path / "c")]) == 2


def test_the_speed_benchmark_runs_its_smoke_path(tmp_path, one_thread):
    """bench/ltx2_hybrid_speed.py at a tiny shape on the CPU: the all-attention model and its hybrid both run."""
    from bench.ltx2_hybrid_speed import main as bench

    out = bench(["--device", "cpu", "--tiny", "--out", str(tmp_path / "smoke.json"), "--repeats", "1"])
    models = out["models"]
    assert models["all_attention"]["pattern"] == "AAAA" and models["hybrid"]["pattern"] == "AACA"
    assert all(m["s_per_forward"] > 0 for m in models.values()) and out["hybrid_speedup"] > 0
