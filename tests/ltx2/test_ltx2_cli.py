"""`aiprod generate` and `aiprod info` on an LTX-2 model, from tiny random files in the released layouts
(tests/ltx2/ltx2_model_files.py): a real video file written and read back, the checkpoint described from its
headers, and each missing or misplaced file refused in one line before any weight is read."""

from __future__ import annotations

import json
import time

import pytest
import torch

from aiprod_core.cli import main
from aiprod_core.model import load_model
from aiprod_core.pipeline import generate
from aiprod_core.video_io import read_video, write_video

pytest.importorskip("ltx_core", reason="the files are written from ltx-core 1.0.0's modules")
from ltx2_model_files import TRANSFORMER, write_model

CLIP = ["--frames", "9", "--height", "64", "--width", "64", "--steps", "2", "-q"]
SLOW = ["--frames", "9", "--height", "64", "--width", "64", "--steps", "500", "-q"]  # minutes if a check let it by


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("ltx2_cli"))


def refused(capsys, argv: list[str], *expected: str) -> str:
    t0 = time.perf_counter()
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, (rc, err)
    assert err.startswith("aiprod generate: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in err, (text, err)
    assert time.perf_counter() - t0 < 10, "refused only after the work ran"
    return err


def test_generate_writes_a_video_that_reads_back_as_the_pipeline_made_it(layouts, tmp_path, capsys):
    s = layouts.single
    out = tmp_path / "ltx2.mp4"
    rc = main(["generate", "a red ball", "--model", s["path"], "--text-encoder", s["text_encoder"], "-o", str(out),
               "--seed", "4", *CLIP])
    assert rc == 0, capsys.readouterr().err
    frames, fps = read_video(out)
    assert frames.shape == (9, 64, 64, 3) and fps == pytest.approx(24.0)
    want = generate(load_model(s["path"], text_encoder=s["text_encoder"]), "a red ball", frames=9, height=64, width=64,
                    steps=2, cfg=3.0, seed=4, progress=False)
    other = generate(load_model(s["path"], text_encoder=s["text_encoder"]), "a red ball", frames=9, height=64,
                     width=64, steps=2, cfg=3.0, seed=5, progress=False)
    # random weights draw pixel noise, which the codec smooths: compare each frame's colour in 8x8 blocks
    def blocks(v):
        return torch.nn.functional.avg_pool2d(v.permute(0, 3, 1, 2), 8)

    got = blocks(torch.from_numpy(frames).float() / 255)
    err, err_other = (got - blocks(want)).abs().mean(), (got - blocks(other)).abs().mean()
    print(f"block colour error: {err:.4f} (another seed's clip: {err_other:.4f})")
    assert err < 0.03 and err < err_other / 2, "the file holds the pipeline's clip, up to the codec"


def test_split_files_and_the_upscaler_through_the_cli(layouts, tmp_path, capsys):
    sp = layouts.split
    out = tmp_path / "ltx2_up.mp4"
    rc = main(["generate", "a red ball", "--model", sp["path"], "--text-encoder", sp["text_encoder"], "--vae", sp["vae"],
               "--text-projection", sp["text_projection"], "--upscaler", sp["upscaler"], "--upscale", "--stg", "1",
               "-o", str(out), *CLIP])
    assert rc == 0, capsys.readouterr().err
    frames, _ = read_video(out)
    assert frames.shape == (9, 128, 128, 3)


def test_extension_continues_a_clip_with_an_ltx2_model(layouts, tmp_path, capsys):
    s = layouts.single
    source = tmp_path / "source.mp4"
    write_video(source, torch.rand(9, 64, 64, 3, generator=torch.Generator().manual_seed(0)), fps=12)
    out = tmp_path / "extended.mp4"
    rc = main(["generate", "a red ball", "--model", s["path"], "--text-encoder", s["text_encoder"], "--extend",
               str(source), "-o", str(out), "--frames", "17", "--height", "64", "--width", "64", "--steps", "2", "-q"])
    assert rc == 0, capsys.readouterr().err
    frames, fps = read_video(out)
    assert frames.shape == (9 + 17 - 9, 64, 64, 3) and fps == pytest.approx(12.0), "the clip, then the new frames"


def test_info_describes_the_checkpoint(layouts, capsys):
    s = layouts.single
    assert main(["info", "--model", s["path"], "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    t = info["components"]["transformer"]
    assert info["family"] == "ltx2" and t["blocks"] == TRANSFORMER["num_layers"] == 2
    assert t["width"] == TRANSFORMER["num_attention_heads"] * TRANSFORMER["attention_head_dim"] and t["dtype"] == "fp32"
    model = load_model(s["path"])
    assert t["params"] == sum(p.numel() for p in model.backbone.parameters())
    assert t["audio_params_skipped"] > 0 and info["audio_params_skipped"] > t["audio_params_skipped"]
    assert info["components"]["vae"]["params"] == sum(p.numel() for p in model.vae.parameters())
    assert set(info["file_components"]) >= {"transformer", "video_connector", "text_projection", "video_vae"}
    assert main(["info", "--model", s["path"], "--text-encoder", s["text_encoder"], "--json"]) == 0
    gemma = json.loads(capsys.readouterr().out)["components"]["text_encoder"]
    loaded = load_model(s["path"], text_encoder=s["text_encoder"]).text_encoder.gemma
    assert gemma["params"] == sum(p.numel() for p in loaded.parameters()) and gemma["dtype"] == "fp32"
    assert main(["info", "--model", s["path"], "--frames", "9", "--height", "64", "--width", "64"]) == 0
    text = capsys.readouterr().out
    assert "family ltx2" in text and "audio parameters not loaded" in text and "latent [8, 2, 2, 2]" in text
    assert main(["info", "--model", s["path"], "--plan", "--vram", "8", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {"text_encoding", "sampling", "vae_decode"} <= set(plan["stages"]), plan["stages"].keys()
    assert plan["clip"]["frames"] == 121, "the model's default clip: LTX-2's 768x512x121"


def test_missing_and_misplaced_files_are_refused_before_loading(layouts, tmp_path, capsys):
    s, sp = layouts.single, layouts.split
    out = ["-o", str(tmp_path / "x.mp4")]
    refused(capsys, ["generate", "p", "--model", s["path"], *out, *SLOW], "is an LTX-2 model", "--text-encoder",
            "gemma_3_12B_it")
    refused(capsys, ["generate", "p", "--model", s["path"], "--text-encoder", s["path"], *out, *SLOW],
            "--text-encoder", "not Gemma")
    refused(capsys, ["generate", "p", "--model", s["path"], "--text-encoder", s["text_encoder"], "--upscaler", sp["vae"],
                     *out, *SLOW], "--upscaler", "spatial upscaler")
    refused(capsys, ["generate", "p", "--model", sp["path"], "--text-encoder", sp["text_encoder"], *out, *SLOW],
            "no video VAE", "--vae")
    refused(capsys, ["generate", "p", "--model", s["path"], "--text-encoder", s["text_encoder"], "--upscale", *out,
                     *SLOW], "no latent upscaler", "--upscaler")
    refused(capsys, ["generate", "p", "--text-encoder", s["text_encoder"], *out, *SLOW], "--text-encoder is for an LTX-2")
    assert not (tmp_path / "x.mp4").exists()
