"""A real ComfyUI for the integration tests: started once per session from $COMFYUI_DIR with this pack in its
custom_nodes, on a free loopback port. Every folder it writes (models, input, output, temp, user, its database
and Python's bytecode caches) lies in a temporary base folder: the ComfyUI tree may be read-only, and the tests
check that it, and the pack's own folders, are left as they were."""

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
# the folder GitHub's "Download ZIP" unpacks to: not the project's name, as a user's folder often is not, so that
# whatever ComfyUI serves under either name (the editor script, the templates) is tested
PACK = "aiprod-v2-main"


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
    def models(self) -> Path:
        return self.base / "models"

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


def listing(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with its size and modification time: a file or folder made, changed or removed
    (even one made and removed again, through its folder's time) changes it."""
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in [root, *root.rglob("*")]}


# the pack's folders that a run inside ComfyUI could write by mistake instead of ComfyUI's own
PACK_FOLDERS = ("models", "input", "output", "temp", "user", "aiprod_core/weights")


def untouched() -> dict[str, dict]:
    return {"ComfyUI": listing(Path(COMFYUI_DIR)), **{f"pack's {d}": listing(ROOT / d) for d in PACK_FOLDERS}}


def assert_untouched(before: dict[str, dict], only: tuple[str, ...] = ()) -> None:
    after = untouched()
    for tree, paths in before.items():
        if only and tree not in only:
            continue
        changed = sorted({p for p, _ in set(paths.items()) ^ set(after[tree].items())})
        assert not changed, f"the tests wrote into the {tree} folder, which ComfyUI must leave alone: {changed[:20]}"


@pytest.fixture(scope="session", autouse=True)
def trees_before():
    """The ComfyUI tree and the pack's folders as they were before any ComfyUI started."""
    return untouched()


@pytest.fixture(scope="module", autouse=True)
def leaves_trees_untouched(trees_before):
    yield
    assert_untouched(trees_before)


def _start(base: Path, *flags: str) -> tuple[subprocess.Popen, Comfy]:
    # --base-directory puts models/, custom_nodes/, input/, output/, temp/ and user/ under `base`: a LoRA the
    # trainer saves goes to base/models/loras, the first loras folder, as it goes to models/loras for a user
    (base / "custom_nodes").mkdir()
    (base / "custom_nodes" / PACK).symlink_to(ROOT, target_is_directory=True)
    # the clip the video-to-video and motion-transfer workflows load is written by the pack into input/ when it loads
    for d in ("input", "output", "user"):
        (base / d).mkdir()
    port = _free_port()
    log = base / "comfyui.log"
    cmd = [COMFYUI_PYTHON, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
           "--base-directory", str(base), "--output-directory", str(base / "output"),
           "--input-directory", str(base / "input"), "--temp-directory", str(base),
           "--user-directory", str(base / "user"), "--database-url", f"sqlite:///{base / 'user' / 'comfyui.db'}",
           "--preview-method", "latent2rgb", *flags]
    # no bytecode caches are written (into the ComfyUI tree or the pack): the installed packages' own are read as
    # they are. A cache prefix of the tests' own made every start compile torch and ComfyUI from source (7 minutes
    # on a busy 2-core machine), and on every start where PYTHONDONTWRITEBYTECODE is set, as here
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPYCACHEPREFIX", None)
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=COMFYUI_DIR, stdout=f, stderr=subprocess.STDOUT, env=env)
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
def comfy(tmp_path_factory, trees_before):
    proc, server = _start(tmp_path_factory.mktemp("comfyui"))
    yield server
    _stop(proc)
    # nothing written on the way out either; the pack's folders were checked after each module, as tests
    # outside tests/integration run before this teardown and may use them
    assert_untouched(trees_before, only=("ComfyUI",))


@pytest.fixture(scope="module")
def comfy_bf16(tmp_path_factory):
    """A second ComfyUI told to keep diffusion models and VAEs in bf16 (on a GPU with bf16 it picks that itself)."""
    proc, server = _start(tmp_path_factory.mktemp("comfyui_bf16"), "--bf16-unet", "--bf16-vae")
    yield server
    _stop(proc)
