"""The pack inside a real ComfyUI: node definitions, templates, every shipped workflow run headless with
`aiprod run-workflow`, rejected graphs and failing nodes, and an interrupted LoRA training that resumes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aiprod_core.video_io import read_video
from aiprod_core.workflow import check_api, load_json

ROOT = Path(__file__).resolve().parents[2]
PACK = "aiprod-v2-main"  # the folder name the pack has in custom_nodes (see conftest.py)
API = sorted((ROOT / "workflows" / "api").glob("*.json"))
# the LTX-2 templates need the user's LTX-2 files: test_ltx2_comfyui.py runs them on tiny ones it writes
AIPROD_API = [p for p in API if not p.stem.startswith("ltx2_")]
FAST = {  # fewer steps than the shipped defaults: the same graphs, quicker on a CPU
    "aiprod_t2v": ["5.steps=4"],
    "aiprod_t2v_upscale": ["5.steps=4", "7.steps=2"],
    "aiprod_v2v": ["7.steps=4"],
    "aiprod_lora_train": ["5.steps=6", "8.steps=4", "5.name=it_star"],
    "aiprod_motion_transfer": ["8.steps=4"],
    "aiprod_camera_motion": ["8.steps=4"],
    "aiprod_i2v": ["6.steps=4"],
    "aiprod_extend": ["7.steps=4"],
    "aiprod_hybridize": ["2.steps_blockwise=4", "2.steps_end_to_end=4", "7.steps=4", "2.name=it_hybrid"],
}
SIZE = {"aiprod_t2v_upscale": 128}
FRAMES = {"aiprod_extend": 17 + 17 - 9}  # the example clip, then its continuation without the 9 frames it repeats


def run_workflow(comfy, path, *sets, out):
    cmd = [sys.executable, "-m", "aiprod_core.cli", "run-workflow", str(path), "--server", comfy.url, "-o", str(out),
           "--quiet", "--timeout", "900"]
    for s in sets:
        cmd += ["--set", s]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)


def test_object_info_lists_every_node_as_declared(comfy, pack):
    pkg, _ = pack
    info = comfy.get("/object_info")
    for node_id, cls in pkg.NODE_CLASS_MAPPINGS.items():
        assert node_id in info, f"{node_id} missing; ComfyUI log:\n{comfy.log.read_text()[-2000:]}"
        declared = cls.INPUT_TYPES()
        served = info[node_id]
        for group in ("required", "optional"):
            assert served["input_order"].get(group, []) == list(declared.get(group, {})), node_id
        assert served["output"] == list(cls.RETURN_TYPES)
        assert served["category"].startswith("AIPROD")
    # the core nodes the workflows use are still as the offline checks assume
    core = json.loads((ROOT / "tests" / "data" / "comfyui_core_nodes.json").read_text())
    for name, spec in core.items():
        assert info[name]["input_order"] == spec["input_order"] and info[name]["output"] == spec["output"], name
    ltx2 = info["AIPRODLTX2Loader"]["input"]  # the LTX-2 templates' files, as if the user had put them in place
    for name, value in (("ckpt_name", "ltx-2-19b-dev-fp8.safetensors"),
                        ("text_encoder", "gemma_3_12B_it_fp8_scaled.safetensors"),
                        ("upscaler", "ltx-2-spatial-upscaler-x2-1.0.safetensors")):
        choices = ltx2["required" if name in ltx2["required"] else "optional"][name][0]
        choices += [value] if value not in choices else []
    for path in API:
        assert check_api(load_json(path), info) == [], path.name


def test_workflows_are_listed_as_templates(comfy):
    templates = comfy.get("/workflow_templates")
    assert sorted(templates[PACK]) == sorted(p.stem for p in API)
    for p in API:  # served from workflows/ (a folder such as examples/ would shadow it)
        assert comfy.get(f"/api/workflow_templates/{PACK}/{p.name}")["nodes"]


@pytest.mark.parametrize("path", AIPROD_API, ids=lambda p: p.stem)
def test_every_workflow_runs_headless(comfy, path, tmp_path):
    r = run_workflow(comfy, path, *FAST[path.stem], out=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    videos = [Path(line) for line in r.stdout.split() if line.endswith(".mp4")]  # what Save Video wrote
    assert len(videos) == 1
    frames, fps = read_video(videos[0])
    side = SIZE.get(path.stem, 64)
    assert frames.shape == (FRAMES.get(path.stem, 17), side, side, 3) and fps == 8
    assert frames.max() > 60  # something was drawn on the black background
    if path.stem == "aiprod_lora_train":
        assert any(line.endswith(".png") for line in r.stdout.split())  # the loss curve preview
        loras = comfy.get("/object_info/AIPRODLoraLoader")["AIPRODLoraLoader"]["input"]["required"]["lora_name"][0]
        assert "it_star.safetensors" in loras  # saved where the LoRA loader looks: the first loras folder,
        assert (comfy.models / "loras" / "it_star.safetensors").is_file()  # models/loras (under the test's base)
    if path.stem == "aiprod_hybridize":
        assert any(line.endswith(".png") for line in r.stdout.split())  # the loss curve preview
        ckpts = comfy.get("/object_info/AIPRODCheckpointLoader")["AIPRODCheckpointLoader"]["input"]["required"]
        assert "it_hybrid.safetensors" in ckpts["ckpt_name"][0]  # the student, listed by the checkpoint loader


def test_bf16_weights_when_comfyui_keeps_models_in_bf16(comfy, comfy_bf16, tmp_path):
    path = ROOT / "workflows" / "api" / "aiprod_t2v_upscale.json"
    clips = {}
    for name, server in (("fp32", comfy), ("bf16", comfy_bf16)):
        r = run_workflow(server, path, *FAST[path.stem], out=tmp_path / name)
        assert r.returncode == 0, r.stderr[-3000:]
        clips[name], _ = read_video(next((tmp_path / name).glob("*.mp4")))
    assert "backbone and upscaler in bfloat16, VAE in bfloat16" in comfy_bf16.log.read_text()
    assert "backbone and upscaler in float32, VAE in float32" in comfy.log.read_text()
    assert clips["bf16"].shape == (17, 128, 128, 3) and clips["bf16"].max() > 60
    diff = abs(clips["bf16"].astype(float) - clips["fp32"].astype(float)).mean()
    assert diff < 4, diff  # the same clip at bf16's precision (0..255, through the video codec)


def test_a_ui_format_graph_runs_too(comfy, tmp_path):
    r = run_workflow(comfy, ROOT / "workflows" / "aiprod_t2v.json", "5.steps=2", "4.frames=9", out=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    frames, _ = read_video(next(tmp_path.glob("*.mp4")))
    assert frames.shape[0] == 9


def test_rejections_and_failures_exit_nonzero_with_the_servers_text(comfy, tmp_path):
    t2v = ROOT / "workflows" / "api" / "aiprod_t2v.json"
    r = run_workflow(comfy, t2v, "5.steps=500", out=tmp_path)
    assert r.returncode == 1 and "bigger than max of 200" in r.stderr
    r = run_workflow(comfy, t2v, "4.frames=16", out=tmp_path)
    assert r.returncode == 1 and "frames=16 is not 1 + 4k" in r.stderr and "use 17 or 13" in r.stderr
    r = run_workflow(comfy, t2v, "1.ckpt_name=../../etc/passwd", out=tmp_path)
    assert r.returncode == 1 and "ckpt_name" in r.stderr


def test_interrupted_training_saves_and_resumes(comfy, tmp_path):
    """POST /interrupt while the trainer runs: it saves its state; queueing again continues from there."""
    import websocket

    graph = load_json(ROOT / "workflows" / "api" / "aiprod_lora_train.json")
    graph["4"]["inputs"].update(frames=9, width=32, height=32)  # small clips: a quick test
    graph["5"]["inputs"].update(steps=20, name="it_resume")
    graph["8"]["inputs"]["steps"] = 2
    ws = websocket.create_connection(comfy.url.replace("http", "ws") + "/ws?clientId=resume-test", timeout=600)
    comfy.post("/prompt", {"prompt": graph, "client_id": "resume-test"})
    losses, interrupted = [], False
    while True:
        msg = ws.recv()
        if not isinstance(msg, str):
            continue
        msg = json.loads(msg)
        if msg["type"] == "aiprod.train":
            losses.append(msg["data"])
            if msg["data"]["step"] == 3 and not interrupted:
                comfy.post("/interrupt", {})
                interrupted = True
        if msg["type"] in ("execution_interrupted", "execution_success", "execution_error"):
            break
    ws.close()
    assert msg["type"] == "execution_interrupted", msg
    assert losses[0]["total"] == 20 and all(isinstance(d["loss"], float) for d in losses)
    run = comfy.output / "aiprod-train" / "it_resume"
    assert (run / "state.safetensors").is_file()
    stopped_at = max(json.loads(line)["global_step"] for line in (run / "log.jsonl").read_text().splitlines())
    assert 3 <= stopped_at < 20
    api_path = tmp_path / "resume.json"
    api_path.write_text(json.dumps(graph))
    r = run_workflow(comfy, api_path, out=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["global_step"] == 20
    steps = [row["global_step"] for row in rows]
    assert steps == sorted(steps)  # resumed, not restarted: no step logged twice


def test_a_lora_with_its_text_encoder_trains_and_loads(comfy, tmp_path):
    """train_text_encoder: the prompts read the trainer's text_encoder output; then the LoRA loader, given the
    checkpoint's text encoder, hands the adapted one to the prompts of a text-to-video graph."""
    graph = load_json(ROOT / "workflows" / "api" / "aiprod_lora_train.json")
    graph["4"]["inputs"].update(frames=9, width=32, height=32)
    graph["5"]["inputs"].update(steps=6, name="it_star_te", train_text_encoder=True)
    graph["8"]["inputs"]["steps"] = 2
    for enc in ("2", "3"):
        graph[enc]["inputs"]["text_encoder"] = ["5", 3]
    train = tmp_path / "train.json"
    train.write_text(json.dumps(graph))
    r = run_workflow(comfy, train, out=tmp_path / "a")
    assert r.returncode == 0, r.stderr[-3000:]

    t2v = load_json(ROOT / "workflows" / "api" / "aiprod_t2v.json")
    t2v["9"] = {"class_type": "AIPRODLoraLoader", "inputs": {"model": ["1", 0], "lora_name": "it_star_te.safetensors",
                                                              "strength": 1.0, "text_encoder": ["1", 2]}}
    t2v["5"]["inputs"]["model"] = ["9", 0]
    for enc in ("2", "3"):
        t2v[enc]["inputs"]["text_encoder"] = ["9", 1]
    path = tmp_path / "t2v_lora.json"
    path.write_text(json.dumps(t2v))
    r = run_workflow(comfy, path, "5.steps=2", out=tmp_path / "b")
    assert r.returncode == 0, r.stderr[-3000:]
    frames, _ = read_video(next((tmp_path / "b").glob("*.mp4")))
    assert frames.shape == (17, 64, 64, 3)
