"""The shipped workflows: only existing nodes, valid widget values, typed links, and UI graphs that agree with
their API twins. AIPROD node definitions come from the node classes; core ones from ComfyUI 0.3.64's
/object_info (tests/data; the integration tests check that snapshot against a live server)."""

import json
from pathlib import Path

import pytest

from aiprod_core.workflow import check_api, check_ui, load_json, set_input, ui_to_api

ROOT = Path(__file__).resolve().parent.parent
UI = sorted((ROOT / "workflows").glob("*.json"))
EXAMPLE_INPUT = "aiprod_example.mp4"  # what the video-to-video graph loads from ComfyUI's input folder
EXAMPLE_IMAGE = "aiprod_example.png"  # and what the image-to-video one loads


def definition(cls) -> dict:
    """A node class as ComfyUI's /object_info describes it."""
    inputs = json.loads(json.dumps(cls.INPUT_TYPES()))  # as served: tuples of choices become lists
    return {"input": inputs, "input_order": {g: list(v) for g, v in inputs.items()}, "output": list(cls.RETURN_TYPES)}


@pytest.fixture(scope="module")
def node_defs(pack):
    pkg, _ = pack
    defs = json.loads((ROOT / "tests" / "data" / "comfyui_core_nodes.json").read_text())
    defs["LoadVideo"]["input"]["required"]["file"][1]["options"] = [EXAMPLE_INPUT]
    defs["LoadImage"]["input"]["required"]["image"][0] = [EXAMPLE_IMAGE]
    defs.update({k: definition(c) for k, c in pkg.NODE_CLASS_MAPPINGS.items()})
    # the shipped model is listed by the checkpoint loader wherever the pack is installed
    defs["AIPRODCheckpointLoader"]["input"]["required"]["ckpt_name"][0].append("aiprod-v2-tiny.safetensors")
    # and LTX-2's files by the LTX-2 loader where a user has put them (LTX2_FILES: where each goes)
    ltx2 = defs["AIPRODLTX2Loader"]["input"]
    for name, value in LTX2_FILES.items():
        ltx2["required" if name in ltx2["required"] else "optional"][name][0].append(value)
    return defs


# the file names the LTX-2 templates load, as Lightricks and ComfyUI publish them
LTX2_FILES = {"ckpt_name": "ltx-2-19b-dev-fp8.safetensors", "text_encoder": "gemma_3_12B_it_fp8_scaled.safetensors",
              "upscaler": "ltx-2-spatial-upscaler-x2-1.0.safetensors"}


def test_every_graph_has_an_api_twin():
    assert {p.name for p in UI} == {p.name for p in (ROOT / "workflows" / "api").glob("*.json")}
    assert {"aiprod_t2v.json", "aiprod_t2v_upscale.json", "aiprod_v2v.json", "aiprod_lora_train.json",
            "aiprod_motion_transfer.json", "aiprod_camera_motion.json", "aiprod_i2v.json",
            "aiprod_extend.json", "ltx2_t2v.json", "ltx2_i2v.json", "ltx2_t2v_upscale.json"} <= {p.name for p in UI}


@pytest.mark.parametrize("path", UI, ids=lambda p: p.stem)
def test_workflow_is_valid_and_matches_its_twin(path, node_defs):
    ui, api = load_json(path), load_json(path.parent / "api" / path.name)
    assert check_ui(ui, node_defs) == []
    assert check_api(api, node_defs) == []
    converted = ui_to_api(ui, node_defs)
    assert {k: (v["class_type"], v["inputs"]) for k, v in converted.items()} == \
           {k: (v["class_type"], v["inputs"]) for k, v in api.items()}
    saving = {"SaveVideo", "SaveAnimatedWEBP"}
    assert any(n["class_type"] in saving for n in api.values()), "every graph saves its video with a core node"


def test_the_checks_catch_broken_graphs(node_defs):
    api = load_json(ROOT / "workflows" / "api" / "aiprod_t2v.json")
    bad = json.loads(json.dumps(api))
    bad["5"]["inputs"]["steps"] = 500
    bad["5"]["inputs"]["sampler"] = "dpm"
    bad["4"]["inputs"]["width"] = "wide"
    bad["6"]["inputs"]["latent"] = ["2", 0]  # CONDITIONING into a LATENT input
    bad["9"] = {"class_type": "NoSuchNode", "inputs": {}}
    del bad["2"]["inputs"]["text"]
    errors = "\n".join(check_api(bad, node_defs))
    for expected in ("outside 1..200", "'dpm' is not one of", "'wide' is not a INT", "takes LATENT but node 2",
                     "unknown node type 'NoSuchNode'", "input 'text': missing"):
        assert expected in errors
    ui = load_json(ROOT / "workflows" / "aiprod_t2v.json")
    ui["links"][0][5] = "IMAGE"
    assert check_ui(ui, node_defs)


def test_set_input_by_id_class_or_title():
    api = load_json(ROOT / "workflows" / "api" / "aiprod_t2v.json")
    set_input(api, "5.steps=7")
    set_input(api, "AIPRODEmptyLatentVideo.frames=9")
    set_input(api, "Prompt (any language).text=un cercle bleu")
    assert api["5"]["inputs"]["steps"] == 7 and api["4"]["inputs"]["frames"] == 9
    assert api["2"]["inputs"]["text"] == "un cercle bleu"
    with pytest.raises(ValueError, match="names 2 nodes"):
        set_input(api, "AIPRODTextEncode.text=x")
    with pytest.raises(ValueError, match=r"NODE\.INPUT=VALUE"):
        set_input(api, "steps=3")


def test_run_workflow_without_a_server_says_how_to_start_one(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = subprocess.run([sys.executable, "-m", "aiprod_core.cli", "run-workflow", str(ROOT / "workflows" / "api" / "aiprod_t2v.json"),
                        "--server", f"http://127.0.0.1:{port}", "-o", str(tmp_path)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 1 and "is ComfyUI running there?" in r.stderr and "Traceback" not in r.stderr
