import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from aiprod_core.checkpoint import save_checkpoint
from aiprod_core.config import preset
from aiprod_core.model import build_model
from aiprod_core.models.lora import LoRA, save_lora

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    # Small tensors gain little from threads, and OpenMP workers spinning on a busy 2-core machine can slow
    # a test down by a factor of 30 or more (a trainer test: 135 s with 2 threads beside another job, 1.7 s with 1).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("OMP_NUM_THREADS", "1")  # and in the commands the tests start
    yield
    mp.undo()
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def seeded():
    # torch seeds its generator at random in each process: a test that draws without seeding (a LoRA's random
    # init, say) would pass or fail by chance
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def pack(tmp_path_factory):
    """The node pack imported as ComfyUI imports it, over model folders holding a random-init tiny model
    (`tiny.safetensors`) and a LoRA for it (`l.safetensors`). Yields (package, models folder)."""
    models = tmp_path_factory.mktemp("models")
    mp = pytest.MonkeyPatch()
    mp.setenv("AIPROD_MODELS_DIR", str(models))
    mp.setenv("AIPROD_OUTPUT_DIR", str(tmp_path_factory.mktemp("output")))
    mp.setenv("AIPROD_INPUT_DIR", str(tmp_path_factory.mktemp("input")))
    model = build_model(preset("tiny"), seed=4)
    torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.02)
    parts = {"backbone": model.backbone, "vae": model.vae, "text_encoder": model.text_encoder, "upscaler": model.upscaler}
    save_checkpoint(models / "diffusion_models" / "tiny.safetensors", model.config, parts)
    lora = LoRA.create(model.backbone, rank=2)
    for p in lora.parameters():
        p.data.normal_(0, 0.1)
    save_lora(models / "loras" / "l.safetensors", lora)
    # the pack as ComfyUI imports it: the repository folder as a package (whatever the folder is called)
    spec = importlib.util.spec_from_file_location("aiprod_pack", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["aiprod_pack"] = pkg
    spec.loader.exec_module(pkg)
    yield pkg, models
    mp.undo()


@pytest.fixture(scope="session")
def node(pack):
    """node("AIPRODSampler") -> a new instance of that node class of the pack."""
    return lambda node_id: pack[0].NODE_CLASS_MAPPINGS[node_id]()

