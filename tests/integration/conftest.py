"""A real ComfyUI for the integration tests: started once per session from $COMFYUI_DIR with this pack loaded
through an --extra-model-paths-config file, on a free loopback port, with its own input and output folders."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
COMFYUI_PYTHON = os.environ.get("COMFYUI_PYTHON", sys.executable)
PACK = "aiprod-v2"


def pytest_collection_modifyitems(config, items):
    if COMFYUI_DIR and (Path(COMFYUI_DIR) / "main.py").is_file():
        return
    skip = pytest.mark.skip(reason="COMFYUI_DIR does not name a ComfyUI checkout; set it (and COMFYUI_PYTHON to the "
                                   "Python that has ComfyUI's requirements) to run the real-ComfyUI tests")
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(skip)


@dataclass
class Comfy:
    url: str
    base: Path
    log: Path

    @property
    def output(self) -> Path:
        return self.base / "output"

    @property
    def input(self) -> Path:
        return self.base / "input"

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read()
            return json.loads(text) if text else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(base: Path, *flags: str) -> tuple[subprocess.Popen, Comfy]:
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK).symlink_to(ROOT, target_is_directory=True)
    (base / "input").mkdir()
    (base / "output").mkdir()
    # the clip the video-to-video and motion-transfer workflows load is written by the pack when it loads
    config = base / "extra_model_paths.yaml"
    config.write_text(f"aiprod_tests:\n  base_path: {base}\n  custom_nodes: custom_nodes\n")
    port = _free_port()
    log = base / "comfyui.log"
    cmd = [COMFYUI_PYTHON, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
           "--extra-model-paths-config", str(config), "--output-directory", str(base / "output"),
           "--input-directory", str(base / "input"), "--preview-method", "latent2rgb", *flags]
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=COMFYUI_DIR, stdout=f, stderr=subprocess.STDOUT)
    server = Comfy(f"http://127.0.0.1:{port}", base, log)
    deadline = time.monotonic() + 240
    while True:
        if proc.poll() is not None:
            pytest.fail(f"ComfyUI exited with {proc.returncode} while starting:\n{log.read_text()[-3000:]}")
        try:
            server.get("/system_stats")
            return proc, server
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"ComfyUI did not answer within 240 s:\n{log.read_text()[-3000:]}")
            time.sleep(1)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    proc, server = _start(tmp_path_factory.mktemp("comfyui"))
    yield server
    for name in ("it_star", "it_resume", "browser_star"):  # LoRAs the tests trained into ComfyUI's models/loras
        (Path(COMFYUI_DIR) / "models" / "loras" / f"{name}.safetensors").unlink(missing_ok=True)
    _stop(proc)


@pytest.fixture(scope="module")
def comfy_bf16(tmp_path_factory):
    """A second ComfyUI told to keep diffusion models and VAEs in bf16 (on a GPU with bf16 it picks that itself)."""
    proc, server = _start(tmp_path_factory.mktemp("comfyui_bf16"), "--bf16-unet", "--bf16-vae")
    yield server
    _stop(proc)
