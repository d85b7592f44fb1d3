"""The LTX-2 templates in a real ComfyUI: run headless on tiny random files in LTX-2's released layouts, written
by the test into ComfyUI's model folders under the names the templates load (at 64x64, 9 frames, 2 steps), and
refused through POST /prompt, before anything runs and without a traceback, while those files are absent."""

import json
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from aiprod_core.video_io import read_video
from aiprod_core.workflow import load_json

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "workflows" / "api"
sys.path.insert(0, str(ROOT / "tests" / "ltx2"))  # the writers of the tiny LTX-2 files
pytest.importorskip("ltx_core", reason="the files are written from ltx-core 1.0.0's modules")
from ltx2_model_files import write_model  # noqa: E402
from test_comfyui import run_workflow  # noqa: E402

CKPT = "ltx-2-19b-dev-fp8.safetensors"
GEMMA = "gemma_3_12B_it_fp8_scaled.safetensors"
UPSCALER = "ltx-2-spatial-upscaler-x2-1.0.safetensors"
PROJECTION = "ltx-2-19b-text_projection.safetensors"
TINY = {  # the templates' size and steps, made small: 64x64 (the upscale template: 64x64 then 128x128), 9 frames
    "ltx2_t2v": ["5.width=64", "5.height=64", "5.frames=9", "6.steps=2"],
    "ltx2_i2v": ["6.width=64", "6.height=64", "6.frames=9", "7.steps=2"],
    "ltx2_t2v_upscale": ["5.width=64", "5.height=64", "5.frames=9", "6.steps=2", "8.steps=2"],
}
SIDE = {"ltx2_t2v_upscale": 128}


def post_prompt(comfy, graph: dict) -> tuple[int, dict]:
    """POST /prompt as the editor does; (HTTP status, the server's JSON answer)."""
    req = urllib.request.Request(comfy.url + "/prompt", data=json.dumps({"prompt": graph}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def loader_errors(answer: dict) -> list[str]:
    return [e["details"] for e in answer.get("node_errors", {}).get("1", {}).get("errors", [])]


def test_absent_files_are_named_with_their_folders_before_anything_runs(comfy):
    for name in TINY:
        status, answer = post_prompt(comfy, load_json(API / f"{name}.json"))
        assert status == 400, answer
        details = loader_errors(answer)
        assert details, answer
        text = details[0]
        assert f"put {CKPT} in models/checkpoints or models/diffusion_models (ckpt_name)" in text, text
        assert f"{GEMMA} in models/text_encoders (text_encoder)" in text
        assert (f"{UPSCALER} in models/latent_upscale_models (upscaler)" in text) == (name == "ltx2_t2v_upscale")
        assert str(comfy.models / "checkpoints") in text, "the folders looked in, as this ComfyUI has them"
        assert "Traceback" not in json.dumps(answer) and "\n" not in text
    assert not list(comfy.output.rglob("ltx2*")), "nothing ran"


@pytest.fixture(scope="module")
def ltx2_files(comfy, tmp_path_factory):
    """Tiny LTX-2 files where a ComfyUI user keeps the real ones, under the templates' names."""
    layouts = write_model(tmp_path_factory.mktemp("ltx2_files"))
    s, sp = layouts.single, layouts.split
    for src, folder, name in ((s["path"], "checkpoints", CKPT), (s["text_encoder"], "text_encoders", GEMMA),
                              (s["upscaler"], "latent_upscale_models", UPSCALER),
                              (sp["text_projection"], "text_encoders", PROJECTION)):
        (comfy.models / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(src, comfy.models / folder / name)
    return comfy.models


@pytest.mark.parametrize("name", list(TINY))
def test_ltx2_template_runs_and_its_video_reads_back(comfy, ltx2_files, name, tmp_path):
    r = run_workflow(comfy, API / f"{name}.json", *TINY[name], out=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:] + comfy.log.read_text()[-3000:]
    videos = [Path(line) for line in r.stdout.split() if line.endswith(".mp4")]
    assert len(videos) == 1, r.stdout
    frames, fps = read_video(videos[0])
    side = SIDE.get(name, 64)
    assert frames.shape == (9, side, side, 3) and fps == 24
    assert frames.std() > 1, "random weights draw noise, not a flat frame"


def test_a_misplaced_file_is_named_by_its_input(comfy, ltx2_files):
    graph = load_json(API / "ltx2_t2v.json")
    graph["1"]["inputs"]["text_encoder"] = PROJECTION
    status, answer = post_prompt(comfy, graph)
    assert status == 400
    text = loader_errors(answer)[0]
    assert "text_encoder" in text and "is an LTX-2 file, not Gemma" in text and "Traceback" not in json.dumps(answer)


def test_the_lora_trainer_trains_ltx2_and_samples_with_its_lora(comfy, ltx2_files, tmp_path):
    """The LoRA training template with its checkpoint loader swapped for the LTX-2 one: the trainer adapts the
    LTX-2 transformer on the synthetic world's clips, saves the LoRA in the published layout into models/loras,
    and the sampler draws with it."""
    graph = load_json(API / "aiprod_lora_train.json")
    graph["1"] = load_json(API / "ltx2_t2v.json")["1"]
    trainer = graph["5"]["inputs"]
    trainer.update(steps=3, name="ltx2_star", resume=False)
    graph["4"]["inputs"].update(frames=9, width=64, height=64)
    graph["7"]["inputs"].update(frames=9, width=64, height=64)
    graph["8"]["inputs"]["steps"] = 2
    path = tmp_path / "ltx2_lora_train.json"
    path.write_text(json.dumps(graph))
    r = run_workflow(comfy, path, out=tmp_path / "out")
    assert r.returncode == 0, r.stderr[-3000:] + comfy.log.read_text()[-3000:]
    lora = comfy.models / "loras" / "ltx2_star.safetensors"
    from safetensors import safe_open

    with safe_open(str(lora), "pt") as f:
        keys = list(f.keys())
    assert keys and all(k.startswith("diffusion_model.transformer_blocks.") for k in keys)
    videos = [Path(line) for line in r.stdout.split() if line.endswith(".mp4")]
    frames, _ = read_video(videos[0])
    assert frames.shape == (9, 64, 64, 3)
